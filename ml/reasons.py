"""Reason codes in plain words: which indicators cost a customer points or raised a risk."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd


def format_value(value) -> str:
    """A feature value for a sentence: integers without decimals, others with two; NaN -> missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "missing"
    v = float(value)
    if v.is_integer() and abs(v) < 1e15:
        return f"{int(v):,}"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:,.2f}"


def top_reasons(
    contributions: np.ndarray,
    values: np.ndarray,
    features: list[str],
    labels: dict[str, str],
    k: int,
    unit: str,
    min_contribution: float = 0.0,
    rows: np.ndarray | None = None,
) -> pd.DataFrame:
    """The ``k`` largest positive contributions of each row, as codes and sentences.

    Parameters
    ----------
    contributions : ndarray (n_rows, n_features)
        How much each feature worsens the row's outcome (points lost, probability added).
    values : ndarray (n_rows, n_features)
        The feature values (for the sentence).
    features : list of str
        Column names, in the order of the columns of ``contributions``.
    labels : dict
        Plain-words label per feature.
    k : int
        Reasons per row.
    unit : {"points", "probability"}
        How contributions are phrased: ``-12 points`` or ``+8.5 pp`` (percentage points).
    min_contribution : float
        Contributions at or below this are not reasons.
    rows : ndarray of bool, optional
        Only these rows get reasons (others get nulls).

    Returns
    -------
    pandas.DataFrame
        ``reason_1 .. reason_k`` (sentences) and ``reason_codes`` (comma-separated feature
        names, most important first), one row per input row.
    """
    n = contributions.shape[0]
    out = {f"reason_{i + 1}": np.full(n, None, dtype=object) for i in range(k)}
    codes = np.full(n, None, dtype=object)
    if n == 0 or not features:
        return pd.DataFrame({**out, "reason_codes": codes})
    selected = np.flatnonzero(rows) if rows is not None else np.arange(n)
    contrib = np.where(np.isnan(contributions[selected]), -np.inf, contributions[selected])
    vals = values[selected]
    # Ties broken by feature order (stable): the same inputs always give the same reasons.
    order = np.argsort(-contrib, axis=1, kind="stable")[:, :k]
    names = [labels.get(f, f) for f in features]
    code_parts: list[list[str]] = [[] for _ in range(len(selected))]
    alive = np.ones(len(selected), dtype=bool)  # a row stops at its first non-reason
    for rank in range(min(k, order.shape[1])):
        j = order[:, rank]
        c = contrib[np.arange(len(selected)), j]
        alive &= c > min_contribution
        v = vals[np.arange(len(selected)), j]
        column = out[f"reason_{rank + 1}"]
        for pos in np.flatnonzero(alive):
            jj, cc = int(j[pos]), float(c[pos])
            if unit == "points":
                effect = f"-{cc:.0f} points" if cc >= 0.5 else f"-{cc:.1f} points"
            else:
                effect = f"+{100 * cc:.1f} pp risk"
            column[selected[pos]] = f"{names[jj]}: {format_value(v[pos])} ({effect})"
            code_parts[pos].append(features[jj])
    for pos, parts in enumerate(code_parts):
        if parts:
            codes[selected[pos]] = ",".join(parts)
    return pd.DataFrame({**out, "reason_codes": codes})


def occlusion_contributions(
    predict, X: np.ndarray, reference: np.ndarray, columns: list[int], batch_rows: int = 200_000
) -> np.ndarray:
    """Risk added by each feature: ``predict(X) - predict(X with the feature at its reference)``.

    A model-agnostic local explanation (one extra prediction per explained feature): a positive
    value means the customer's actual value of that feature raises the predicted probability
    compared with a typical value (the training median). Columns not in ``columns`` get NaN.
    """
    n, m = X.shape
    out = np.full((n, m), np.nan)
    for start in range(0, n, batch_rows):
        block = X[start : start + batch_rows]
        base = predict(block)
        for j in columns:
            # Rows already at the reference value gain nothing from occlusion: only the others
            # are predicted again (most counts sit at their median of zero most months).
            differs = ~((block[:, j] == reference[j]) | (np.isnan(block[:, j]) & np.isnan(reference[j])))
            effect = np.zeros(len(block))
            if differs.any():
                changed = block[differs].copy()
                changed[:, j] = reference[j]
                effect[differs] = base[differs] - predict(changed)
            out[start : start + batch_rows, j] = effect
    return out
