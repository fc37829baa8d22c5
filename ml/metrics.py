"""Model metrics: AUC, KS, Gini, Brier, calibration by decile, precision at capacity."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import brier_score_loss, roc_auc_score, roc_curve


def _binary(y_true, y_score) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true, dtype=float).ravel()
    s = np.asarray(y_score, dtype=float).ravel()
    if y.shape != s.shape:
        raise ValueError(f"y_true and y_score differ in length: {y.size} != {s.size}")
    keep = ~(np.isnan(y) | np.isnan(s))
    return y[keep].astype(int), s[keep]


def auc(y_true, y_score) -> float | None:
    """Area under the ROC curve, or None when only one class is present."""
    y, s = _binary(y_true, y_score)
    if y.size == 0 or y.min() == y.max():
        return None
    return float(roc_auc_score(y, s))


def ks(y_true, y_score) -> float | None:
    """Kolmogorov-Smirnov statistic: the largest gap between the TPR and FPR curves."""
    y, s = _binary(y_true, y_score)
    if y.size == 0 or y.min() == y.max():
        return None
    fpr, tpr, _ = roc_curve(y, s)
    return float(np.max(tpr - fpr))


def brier(y_true, y_prob) -> float | None:
    y, p = _binary(y_true, y_prob)
    if y.size == 0:
        return None
    return float(brier_score_loss(y, np.clip(p, 0, 1)))


def classification_metrics(y_true, y_prob, prefix: str = "") -> dict[str, float | None]:
    """AUC, KS, Gini (2 AUC - 1), Brier, n and event rate of a probability forecast."""
    y, p = _binary(y_true, y_prob)
    value = auc(y, p)
    return {
        f"{prefix}auc": value,
        f"{prefix}ks": ks(y, p),
        f"{prefix}gini": None if value is None else 2 * value - 1,
        f"{prefix}brier": brier(y, p),
        f"{prefix}n": int(y.size),
        f"{prefix}event_rate": float(y.mean()) if y.size else None,
    }


def calibration_by_decile(y_true, y_prob, n_bins: int = 10) -> pd.DataFrame:
    """Mean predicted versus observed rate per decile of the prediction (decile 10 = riskiest).

    Returns
    -------
    pandas.DataFrame
        ``decile, n, mean_predicted, observed_rate, min_predicted, max_predicted``.
    """
    y, p = _binary(y_true, y_prob)
    if y.size == 0:
        return pd.DataFrame(
            columns=["decile", "n", "mean_predicted", "observed_rate", "min_predicted", "max_predicted"]
        )
    order = np.argsort(p, kind="stable")
    decile = np.empty(y.size, dtype=int)
    decile[order] = np.floor(np.arange(y.size) * n_bins / y.size).astype(int) + 1
    frame = pd.DataFrame({"decile": decile, "y": y, "p": p})
    out = (
        frame.groupby("decile")
        .agg(
            n=("y", "size"),
            mean_predicted=("p", "mean"),
            observed_rate=("y", "mean"),
            min_predicted=("p", "min"),
            max_predicted=("p", "max"),
        )
        .reset_index()
    )
    return out


def precision_at_k(y_true, y_score, k: int) -> float | None:
    """Share of positives among the ``k`` highest scores (ties broken by position)."""
    y, s = _binary(y_true, y_score)
    if y.size == 0 or k <= 0:
        return None
    top = np.argsort(-s, kind="stable")[: min(k, y.size)]
    return float(y[top].mean())


def precision_at_capacity_by_month(
    frame: pd.DataFrame, month_col: str, label_col: str, score_col: str, capacity: int
) -> tuple[float | None, float | None]:
    """Mean over months of precision among each month's top ``capacity``, and its ceiling.

    The ceiling is what a perfect ranking reaches: ``min(capacity, positives) / capacity`` per
    month, averaged the same way.
    """
    precisions, ceilings = [], []
    for _, part in frame.groupby(month_col, sort=True):
        part = part.dropna(subset=[label_col, score_col])
        if part.empty:
            continue
        k = min(capacity, len(part))
        ordered = part.sort_values([score_col], ascending=False, kind="stable")
        precisions.append(float(ordered[label_col].head(k).astype(float).mean()))
        ceilings.append(min(k, float(part[label_col].astype(float).sum())) / k)
    if not precisions:
        return None, None
    return float(np.mean(precisions)), float(np.mean(ceilings))
