"""What every model shares: the training plan (out-of-time split, rows, fingerprint)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from gridcredit.ml.features import MONTH_INDEX, Dataset, fingerprint_rows, month_from_index
from gridcredit.ml.splits import InsufficientHistory, TimeSplit, out_of_time_split, sample_rows


@dataclass
class Plan:
    """How one model version is trained and tested: which months and rows, on what data."""

    model_name: str
    split: TimeSplit
    label_column: str | None
    train_rows: np.ndarray
    validation_rows: np.ndarray
    test_rows: np.ndarray
    features: list[str]
    data_fingerprint: str
    parameters: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # The dataset the row positions index: for an on-demand dataset, a frame of only the planned rows
    # (gather_rows); None: the dataset the plan was made on. Dropped before scoring (ADR 0097).
    data: Dataset | None = None

    @property
    def learned_months(self) -> set[int]:
        return set(self.split.train) | set(self.split.validation)


def labelled_plan(
    ds: Dataset, cfg: dict, model_name: str, role: str, features: list[str], use_validation: bool = True
) -> Plan:
    """Out-of-time plan for a classifier learning label ``role``.

    Raises
    ------
    InsufficientHistory
        The label is absent, too few months are labelled, or too few rows/positives.
    """
    disc = cfg["discipline"]
    horizon = int(cfg["inputs"]["label_horizon_months"][role])
    column = ds.labels.get(role)
    if column is None:
        raise InsufficientHistory(f"label column {cfg['inputs']['labels'][role]!r} ({role}) not found")
    if not features:
        raise InsufficientHistory("no feature columns")
    months = ds.labelled_months(role, horizon)
    split = out_of_time_split(
        months,
        disc["train_months"],
        disc["validation_months"],
        disc["test_months"],
        disc["min_train_months"],
        use_validation=use_validation,
    )
    parts = [(split.train, column, int(disc["max_train_rows"])), (split.validation, column, None)]
    data, (train, validation, test) = gather_rows(ds, [*parts, (split.test, column, None)], int(disc["seed"]))
    frame = data.frame
    y = frame[column].to_numpy(dtype=float)
    positives = int(np.nansum(y[train]))
    if len(train) < int(disc.get("min_train_rows", 1)) or positives < int(disc["min_positives"]):
        raise InsufficientHistory(
            f"{len(train)} training rows with {positives} positive '{column}' cases; at least "
            f"{disc.get('min_train_rows', 1)} rows and {disc['min_positives']} positives needed"
        )
    if len(test) == 0 or np.nanmin(y[test]) == np.nanmax(y[test]):
        raise InsufficientHistory(f"the test months have a single class of '{column}': cannot test")
    features, dropped = usable_features(frame, train, features)
    if not features:
        raise InsufficientHistory("every feature is missing in the training months")
    used = np.concatenate([train, validation, test])
    notes = [f"features without any value in the training months left out: {', '.join(dropped)}"] if dropped else []
    return Plan(
        model_name=model_name,
        split=split,
        label_column=column,
        train_rows=train,
        validation_rows=validation,
        test_rows=test,
        features=list(features),
        data_fingerprint=fingerprint_rows(frame, used, [ds.customer_col, ds.month_col, column, *features]),
        notes=notes,
        data=data,
    )


def gather_rows(ds: Dataset, parts, seed: int) -> tuple[Dataset, list[np.ndarray]]:
    """Row positions of each part ``(months, label column or None, row cap or None)``: the rows of
    those months (with a known label), a deterministic sample of at most ``cap`` of them.

    A whole dataset gives positions into its own frame. An on-demand one reads the parts' months
    one at a time and keeps only the chosen rows, so at most the planned rows and one month are
    held; it returns a dataset of those rows and positions into it. The sample is the same:
    ``sample_rows`` picks by position in the sorted candidate list, and the candidates' count per
    month is known from the mart's summary, so positions are drawn before any row is read.
    """
    if not ds.on_demand:
        month = ds.frame[MONTH_INDEX].to_numpy()
        out = []
        for months, label, cap in parts:
            mask = np.isin(month, list(months))
            if label is not None:
                mask &= ds.frame[label].notna().to_numpy()
            rows = np.flatnonzero(mask)
            out.append(sample_rows(rows, cap, seed) if cap is not None else rows)
        return ds, out
    pieces: list[pd.DataFrame] = []
    out, offset = [], 0
    for months, label, cap in parts:
        counts = ds.label_counts(label) if label is not None else ds.month_row_counts()
        months = sorted(int(m) for m in months)
        total = sum(counts.get(m, 0) for m in months)
        chosen = sample_rows(np.arange(total), cap, seed) if cap is not None else None
        seen, positions = 0, []
        for m in months:
            if not counts.get(m, 0):
                continue
            frame = ds.window([m]).frame
            rows = np.flatnonzero(frame[label].notna().to_numpy()) if label is not None else np.arange(len(frame))
            if len(rows) != counts[m]:
                raise RuntimeError(
                    f"the feature mart changed while it was read: {len(rows)} rows in month {m}, {counts[m]} counted"
                )
            if chosen is not None:
                rows = rows[chosen[(chosen >= seen) & (chosen < seen + len(rows))] - seen]
            seen += counts[m]
            pieces.append(frame.iloc[rows].reset_index(drop=True))
            del frame
            positions.append(np.arange(offset, offset + len(rows)))
            offset += len(rows)
        out.append(np.concatenate(positions) if positions else np.array([], dtype=np.int64))
    return replace(ds, frame=concat_by_column(pieces, ds.frame)), out


def concat_by_column(pieces: list[pd.DataFrame], template: pd.DataFrame) -> pd.DataFrame:
    """``pd.concat(pieces, ignore_index=True)`` joining one column at a time and freeing each column's
    pieces as it goes: the peak is about the result plus one column, not twice the result."""
    if not pieces:
        return template.iloc[:0].copy()
    columns = {}
    for name in list(pieces[0].columns):
        parts = [piece.pop(name) for piece in pieces]
        columns[name] = parts[0].reset_index(drop=True) if len(parts) == 1 else pd.concat(parts, ignore_index=True)
        del parts
    pieces.clear()
    return pd.DataFrame(columns, copy=False)


def usable_features(frame: pd.DataFrame, rows: np.ndarray, features: list[str]) -> tuple[list[str], list[str]]:
    """Features with at least one value in ``rows`` (an all-missing column carries nothing)."""
    present = {f: bool(frame[f].iloc[rows].notna().any()) for f in features}  # a column at a time: no copy
    return [f for f in features if present[f]], [f for f in features if not present[f]]


def run_identity(model_name: str, plan: Plan, code_fingerprint: str, config_fingerprint: str) -> dict:
    """Run key (model + training window + fingerprint of data and code) and the names derived from it."""
    first, last = plan.split.train_window
    fingerprint = hashlib.sha256(
        f"{model_name}|{plan.data_fingerprint}|{code_fingerprint}|{config_fingerprint}".encode()
    ).hexdigest()
    short = fingerprint[:10]
    return {
        "run_id": f"{model_name}-{first:%Y%m}-{last:%Y%m}-{short}",
        "model_version": f"{last:%Y%m}.{short[:8]}",
        "fingerprint": fingerprint,
        "train_window_first_month": first.date(),
        "train_window_last_month": last.date(),
    }


def months_as_dates(months) -> list:
    return [month_from_index(m).date() for m in months]


def xy(ds: Dataset, rows: np.ndarray, features: list[str], label: str | None = None):
    """Feature matrix (float64) and optionally the label of the given row positions."""
    X = ds.frame.iloc[rows][features].to_numpy(dtype=float)
    if label is None:
        return X
    return X, ds.frame.iloc[rows][label].to_numpy(dtype=float)


def month_rows(ds: Dataset, months) -> np.ndarray:
    return np.flatnonzero(ds.frame[MONTH_INDEX].isin(list(months)).to_numpy())


def output_keys(ds: Dataset, rows: np.ndarray) -> pd.DataFrame:
    part = ds.frame.iloc[rows]
    return pd.DataFrame(
        {
            "customer_id": part[ds.customer_col].to_numpy(),
            "as_of_month": part[ds.month_col].dt.date.to_numpy(),
            MONTH_INDEX: part[MONTH_INDEX].to_numpy(),
        }
    )
