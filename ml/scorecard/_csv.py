"""Fit a scorecard from a CSV file and write its artefacts (table, report, SQL)."""

from __future__ import annotations

import csv
import json
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score, roc_curve
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from gridcredit.ml.scorecard._estimator import Scorecard

#: Fewest data rows accepted, and fewest rows of the rarer class.
MIN_ROWS = 50
MIN_CLASS_ROWS = 10
#: A text column with more distinct values than this share of rows is treated as an identifier.
MAX_CATEGORICAL_UNIQUE_SHARE = 0.5
_SNIFF_BYTES = 64 * 1024


class ScorecardInputError(ValueError):
    """The input file cannot be used to fit a scorecard; the message names file and problem."""


def ks_statistic(y_true, y_score) -> float:
    """Kolmogorov-Smirnov statistic: max distance between the score CDFs of bads and goods.

    Parameters
    ----------
    y_true : array-like of {0, 1}
        1 = bad.
    y_score : array-like of float
        Any score ordered with risk (e.g. probability of bad).

    Returns
    -------
    float
        ``max(tpr - fpr)`` over all thresholds, in [0, 1].
    """
    fpr, tpr, _ = roc_curve(y_true, y_score)
    return float(np.max(tpr - fpr))


def _read_table(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise ScorecardInputError(f"{path}: file not found")
    with path.open("rb") as handle:
        head = handle.read(_SNIFF_BYTES)
    if not head.strip():
        raise ScorecardInputError(f"{path}: file is empty")
    if b"\x00" in head:
        raise ScorecardInputError(f"{path}: binary file (NUL bytes), expected a CSV text file")
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError:
        # A multi-byte character may be cut at the sniff boundary; retry without the tail.
        try:
            text = head[:-4].decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise ScorecardInputError(
                f"{path}: not UTF-8 text ({error.reason} at byte {error.start}), expected a CSV"
            ) from error
    try:
        delimiter = csv.Sniffer().sniff(text.split("\n", 20)[0], delimiters=",;\t|").delimiter
    except csv.Error:
        delimiter = ","
    try:
        frame = pd.read_csv(path, sep=delimiter, encoding="utf-8-sig", low_memory=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as error:
        raise ScorecardInputError(f"{path}: cannot be parsed as CSV ({error})") from error
    if frame.shape[1] < 2:
        raise ScorecardInputError(
            f"{path}: found {frame.shape[1]} column; a scorecard needs a target column and at "
            "least one feature column (comma-, semicolon-, tab- or pipe-separated, header row first)"
        )
    return frame


def _bad_flag(path: Path, column: pd.Series, target: str, bad_value) -> tuple[np.ndarray, object]:
    """1 where the target equals the bad value; returns (flags, bad value as found)."""
    present = column.dropna()
    values = pd.unique(present)
    shown = sorted(map(str, values))[:10]
    if len(values) < 2:
        raise ScorecardInputError(
            f"{path}: target column {target!r} has a single class {shown}; need goods and bads"
        )
    if bad_value is None:
        if len(values) > 2:
            raise ScorecardInputError(
                f"{path}: target column {target!r} has {len(values)} distinct values "
                f"(e.g. {shown}); pass bad_value (--bad-value) to say which one means bad"
            )
        if set(values.tolist()) <= {0, 1} or set(values.tolist()) <= {True, False}:
            bad = 1
        else:
            raise ScorecardInputError(
                f"{path}: target column {target!r} has values {shown}, not 0/1; pass bad_value "
                "(--bad-value) to say which one means bad"
            )
    else:
        bad = None
        for value in values:
            if value == bad_value or str(value) == str(bad_value):
                bad = value
                break
        if bad is None and pd.api.types.is_numeric_dtype(column):
            try:
                candidate = float(bad_value)
            except (TypeError, ValueError):
                candidate = None
            if candidate is not None and (present == candidate).any():
                bad = candidate
        if bad is None:
            raise ScorecardInputError(
                f"{path}: bad_value {bad_value!r} does not occur in target column {target!r} "
                f"(values: {shown})"
            )
    flags = (column == bad).to_numpy(dtype=bool) & column.notna().to_numpy()
    return flags.astype(int), bad


def _baseline_auc(X_train, y_train, X_test, y_test, categorical: list[str]) -> float:
    """Plain logistic regression: numeric median-imputed + standardised, categoricals one-hot."""
    numeric = [c for c in X_train.columns if c not in categorical]
    transformers = []
    if numeric:
        transformers.append(
            ("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric)
        )
    if categorical:
        transformers.append((
            "categorical",
            make_pipeline(
                SimpleImputer(strategy="constant", fill_value="__missing__"),
                OneHotEncoder(handle_unknown="ignore", min_frequency=5),
            ),
            categorical,
        ))
    model = make_pipeline(ColumnTransformer(transformers), LogisticRegression(max_iter=2000))

    def prep(frame):
        frame = frame.copy()
        for c in categorical:
            frame[c] = frame[c].astype("string").to_numpy(dtype=object, na_value=np.nan)
        for c in numeric:
            frame[c] = frame[c].astype("float64")
        return frame

    model.fit(prep(X_train), y_train)
    return float(roc_auc_score(y_test, model.predict_proba(prep(X_test))[:, 1]))


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def fit_scorecard_from_csv(
    csv_path: str | Path,
    target: str,
    id_column: str | None = None,
    bad_value=None,
    test_size: float = 0.3,
    seed: int = 0,
    out_dir: str | Path = "scorecard_output",
    **scorecard_params,
) -> dict:
    """Fit a :class:`Scorecard` on a CSV file, evaluate it on a holdout and write artefacts.

    Rows are split into train and test, stratified on the target with ``seed``. The
    scorecard is fitted on train; it and a baseline logistic regression (numeric columns
    median-imputed and standardised, categoricals one-hot) are evaluated on test.

    Files written to ``out_dir`` (created if needed):

    ``scorecard.csv`` / ``scorecard.json``
        One row per variable bin: variable, bin, WOE, event rate, count, points, ...
    ``report.json``
        Holdout ``auc``, ``ks``, ``gini``, ``baseline_lr_auc``, ``n_train``, ``n_test``, the
        target, bad value, scaling parameters, selected and excluded variables.
    ``score.sql``
        A ``select`` scoring a table with the same columns; replace ``{{ table }}``.

    Parameters
    ----------
    csv_path : str or Path
        CSV file with a header row (delimiter ``,``, ``;``, tab or ``|`` is detected).
    target : str
        Column holding the outcome.
    id_column : str, optional
        Identifier column: excluded from features, carried through ``score.sql``.
    bad_value : optional
        Target value meaning bad (event). Default: 1 when the target is 0/1 (or boolean).
    test_size : float, default=0.3
        Share of rows held out, in (0, 1).
    seed : int, default=0
        Seed of the stratified split.
    out_dir : str or Path, default="scorecard_output"
        Output directory.
    **scorecard_params
        Passed to :class:`Scorecard` (e.g. ``pdo``, ``base_score``, ``base_odds``).

    Returns
    -------
    dict
        The report (as in ``report.json``) plus ``"files"``: paths written,
        ``"scorecard"``: the fitted :class:`Scorecard`, and ``"train_index"`` /
        ``"test_index"``: row positions of the split among the rows with a target value.

    Raises
    ------
    ScorecardInputError
        Missing file or columns, non-tabular or binary file, a one-class target, a bad value
        absent from the target, or fewer than ``MIN_ROWS`` rows / ``MIN_CLASS_ROWS`` of a class.
    """
    path = Path(csv_path)
    if not isinstance(test_size, float | int) or not 0 < test_size < 1:
        raise ValueError(f"test_size must be a number in (0, 1), got {test_size!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an integer, got {seed!r}")
    started = time.perf_counter()
    frame = _read_table(path)
    columns = [str(c) for c in frame.columns]
    frame.columns = columns
    if target not in columns:
        raise ScorecardInputError(
            f"{path}: target column {target!r} not found; columns are {columns[:30]}"
        )
    if id_column is not None and id_column not in columns:
        raise ScorecardInputError(f"{path}: id column {id_column!r} not found; columns are "
                                  f"{columns[:30]}")
    if id_column == target:
        raise ScorecardInputError(f"{path}: id column and target are both {target!r}")
    frame = frame[frame[target].notna()]
    if len(frame) < MIN_ROWS:
        raise ScorecardInputError(
            f"{path}: too few rows with a target value ({len(frame)}); need at least {MIN_ROWS}"
        )
    y, bad = _bad_flag(path, frame[target], target, bad_value)
    minority = int(min(y.sum(), len(y) - y.sum()))
    if minority < MIN_CLASS_ROWS:
        raise ScorecardInputError(
            f"{path}: too few rows of the rarer class ({minority} of {len(y)}); need at least "
            f"{MIN_CLASS_ROWS} goods and {MIN_CLASS_ROWS} bads"
        )

    features = [c for c in columns if c not in (target, id_column)]
    excluded = {}
    for c in features:
        col = frame[c]
        if col.isna().all():
            excluded[c] = "all values missing"
        elif col.nunique(dropna=True) < 2:
            excluded[c] = "constant"
        elif (not pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)
              and col.nunique(dropna=True) > MAX_CATEGORICAL_UNIQUE_SHARE * len(col)):
            excluded[c] = "text column with mostly distinct values (identifier-like)"
    features = [c for c in features if c not in excluded]
    if not features:
        raise ScorecardInputError(f"{path}: no usable feature columns (excluded: {excluded})")
    X = frame[features].reset_index(drop=True)

    X_train, X_test, y_train, y_test, idx_train, idx_test = train_test_split(
        X, y, np.arange(len(X)), test_size=test_size, random_state=seed, stratify=y
    )
    card = Scorecard(**scorecard_params).fit(X_train, y_train)
    p_test = card.predict_proba(X_test)[:, 1]
    auc = float(roc_auc_score(y_test, p_test))
    baseline = _baseline_auc(X_train, y_train, X_test, y_test, card.categorical_features_)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = card.table_.copy()
    table_out = table.assign(
        categories=table["categories"].map(lambda v: None if v is None else json.dumps(v))
    )
    table_out.to_csv(out / "scorecard.csv", index=False)
    (out / "scorecard.json").write_text(
        json.dumps(_jsonable(table.to_dict(orient="records")), indent=2) + "\n"
    )
    sql = card.to_sql(keep_columns=[id_column] if id_column else None)
    (out / "score.sql").write_text(sql)

    scores_test = card.predict_score(X_test)
    report = {
        "csv_path": str(path),
        "target": target,
        "bad_value": bad,
        "id_column": id_column,
        "event_rate": float(y.mean()),
        "test_size": test_size,
        "seed": seed,
        "n_train": len(X_train),
        "n_test": len(X_test),
        "auc": auc,
        "gini": 2 * auc - 1,
        "ks": ks_statistic(y_test, p_test),
        "baseline_lr_auc": baseline,
        "pdo": card.pdo,
        "base_score": card.base_score,
        "base_odds": card.base_odds,
        "monotonic_trend": card.monotonic_trend,
        "min_iv": card.min_iv,
        "selected_variables": list(card.selected_features_),
        "dropped_for_sign": list(card.dropped_for_sign_),
        "categorical_variables": list(card.categorical_features_),
        "excluded_columns": excluded,
        "information_value": card.information_value_,
        "coefficients": dict(zip(card.selected_features_,
                                 card.logistic_regression_.coef_[0].tolist(), strict=True)),
        "intercept": float(card.logistic_regression_.intercept_[0]),
        "score_test_min": float(np.min(scores_test)),
        "score_test_median": float(np.median(scores_test)),
        "score_test_max": float(np.max(scores_test)),
        "fit_seconds": round(time.perf_counter() - started, 2),
    }
    report = _jsonable(report)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    files = {name: str(out / name) for name in
             ("scorecard.csv", "scorecard.json", "report.json", "score.sql")}
    return {**report, "files": files, "scorecard": card, "test_index": idx_test,
            "train_index": idx_train}
