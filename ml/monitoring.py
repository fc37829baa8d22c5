"""Monitoring as data: population stability index (PSI) and observed bad rate per grade."""

from __future__ import annotations

import numpy as np
import pandas as pd

PSI_EPSILON = 1e-4  # share given to an empty bin so the logarithm stays finite


def psi_bin_edges(reference, n_bins: int = 10) -> np.ndarray:
    """Inner bin edges: quantiles of the reference distribution (duplicates removed).

    A value equal to an edge falls in the bin to its right (``numpy.searchsorted(side="right")``).
    """
    values = np.asarray(reference, dtype=float)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return np.array([])
    qs = np.quantile(values, np.linspace(0, 1, n_bins + 1)[1:-1])
    return np.unique(qs)


def bin_shares(values, edges: np.ndarray) -> np.ndarray:
    """Share of values per bin (bins from ``edges``), with a last bin for missing values."""
    v = np.asarray(values, dtype=float)
    missing = np.isnan(v)
    idx = np.searchsorted(edges, v[~missing], side="right")
    counts = np.bincount(idx, minlength=len(edges) + 1).astype(float)
    counts = np.append(counts, missing.sum())
    total = counts.sum()
    return counts / total if total else counts


def psi_from_shares(expected: np.ndarray, actual: np.ndarray, epsilon: float = PSI_EPSILON) -> float:
    """PSI = sum over bins of (actual - expected) * ln(actual / expected).

    Parameters
    ----------
    expected, actual : array-like of float
        Shares per bin of the reference and the current population (each summing to 1).
    epsilon : float
        Floor for empty bins.
    """
    e = np.maximum(np.asarray(expected, dtype=float), epsilon)
    a = np.maximum(np.asarray(actual, dtype=float), epsilon)
    return float(np.sum((a - e) * np.log(a / e)))


def psi(reference, current, n_bins: int = 10) -> float | None:
    """PSI of ``current`` against ``reference`` on the reference's quantile bins.

    Missing values have their own bin. None when either population is empty.
    """
    ref = np.asarray(reference, dtype=float)
    cur = np.asarray(current, dtype=float)
    if ref.size == 0 or cur.size == 0:
        return None
    edges = psi_bin_edges(ref, n_bins)
    return psi_from_shares(bin_shares(ref, edges), bin_shares(cur, edges))


def psi_flag(value: float | None, investigate: float = 0.1, act: float = 0.25) -> str | None:
    """``stable`` below ``investigate``, ``investigate`` below ``act``, else ``act``."""
    if value is None or np.isnan(value):
        return None
    if value >= act:
        return "act"
    if value >= investigate:
        return "investigate"
    return "stable"


def psi_month_over_month(
    frame: pd.DataFrame, month_col: str, columns: list[str], n_bins: int, investigate: float, act: float
) -> pd.DataFrame:
    """PSI of each column in each month against the previous month present in ``frame``.

    Returns
    -------
    pandas.DataFrame
        ``variable, as_of_month, reference_month, psi, flag, n_current, n_reference``.
    """
    months = sorted(frame[month_col].dropna().unique())
    groups = {m: part for m, part in frame.groupby(month_col, sort=True)}
    rows = []
    for previous, month in zip(months, months[1:], strict=False):
        ref, cur = groups[previous], groups[month]
        for column in columns:
            value = psi(ref[column].to_numpy(dtype=float), cur[column].to_numpy(dtype=float), n_bins)
            rows.append(
                {
                    "variable": column,
                    "as_of_month": month,
                    "reference_month": previous,
                    "psi": value,
                    "flag": psi_flag(value, investigate, act),
                    "n_current": len(cur),
                    "n_reference": len(ref),
                }
            )
    return pd.DataFrame(
        rows, columns=["variable", "as_of_month", "reference_month", "psi", "flag", "n_current", "n_reference"]
    )


def grade_bad_rate(
    scores: pd.DataFrame, labels: pd.DataFrame, keys: list[str], label_col: str, mature_until
) -> pd.DataFrame:
    """Observed bad rate per as-of month and grade (model and final).

    Parameters
    ----------
    scores : DataFrame
        ``keys`` + ``model_grade`` + ``final_grade``.
    labels : DataFrame
        ``keys`` + ``label_col`` (1 = bad).
    mature_until
        Last as-of month whose label is fully observed; later months get a null rate.
    """
    month = keys[1]
    merged = scores.merge(labels[[*keys, label_col]], on=keys, how="left")
    rows = []
    for grade_type in ("model", "final"):
        col = f"{grade_type}_grade"
        for (m, grade), part in merged.groupby([month, col], sort=True):
            mature = mature_until is not None and m <= mature_until
            known = part[label_col].dropna()
            rows.append(
                {
                    "as_of_month": m,
                    "grade_type": grade_type,
                    "grade": grade,
                    "customers": len(part),
                    "customers_with_outcome": int(len(known)) if mature else 0,
                    "bads": int(known.astype(float).sum()) if mature else None,
                    "bad_rate": float(known.astype(float).mean()) if mature and len(known) else None,
                    "is_outcome_mature": bool(mature),
                }
            )
    return pd.DataFrame(
        rows,
        columns=[
            "as_of_month",
            "grade_type",
            "grade",
            "customers",
            "customers_with_outcome",
            "bads",
            "bad_rate",
            "is_outcome_mature",
        ],
    )
