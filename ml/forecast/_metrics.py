"""Point-forecast error metrics: MAE, MASE, WAPE."""

from __future__ import annotations

import numbers

import numpy as np


def _pair(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(y_true, dtype=float).ravel()
    b = np.asarray(y_pred, dtype=float).ravel()
    if a.shape != b.shape:
        raise ValueError(f"y_true and y_pred differ in length: {a.shape[0]} != {b.shape[0]}")
    if a.size == 0:
        raise ValueError("y_true and y_pred are empty")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("y_true and y_pred must be finite (drop missing pairs first)")
    return a, b


def mae(y_true, y_pred) -> float:
    """Mean absolute error.

    Parameters
    ----------
    y_true, y_pred : array-like of float
        Actuals and forecasts, same length, finite.

    Returns
    -------
    float
        ``mean(|y_true - y_pred|)``.
    """
    a, b = _pair(y_true, y_pred)
    return float(np.mean(np.abs(a - b)))


def wape(y_true, y_pred) -> float:
    """Weighted absolute percentage error: ``sum|y_true - y_pred| / sum|y_true|``.

    Parameters
    ----------
    y_true, y_pred : array-like of float
        Actuals and forecasts, same length, finite; ``y_true`` not all zero.

    Returns
    -------
    float
        Share (0.1 = 10 %), robust to single months near zero unlike MAPE.
    """
    a, b = _pair(y_true, y_pred)
    denominator = np.sum(np.abs(a))
    if denominator == 0:
        raise ValueError("wape is undefined when every actual is 0")
    return float(np.sum(np.abs(a - b)) / denominator)


def mase(y_true, y_pred, y_train, season: int = 12) -> float:
    """Mean absolute scaled error (Hyndman & Koehler, 2006), seasonal scaling.

    Parameters
    ----------
    y_true, y_pred : array-like of float
        Out-of-sample actuals and forecasts.
    y_train : array-like of float
        In-sample history (finite), longer than ``season``.
    season : int, default=12
        Season length of the naive forecast used for scaling (1 = plain naive).

    Returns
    -------
    float
        ``mae(y_true, y_pred) / mean(|y_train[t] - y_train[t - season]|)``; below 1 means
        better than the in-sample seasonal naive forecast.
    """
    if isinstance(season, bool) or not isinstance(season, numbers.Integral) or season < 1:
        raise ValueError(f"season must be an integer >= 1, got {season!r}")
    history = np.asarray(y_train, dtype=float).ravel()
    if history.size <= season:
        raise ValueError(f"y_train needs more than season={season} values, got {history.size}")
    if not np.isfinite(history).all():
        raise ValueError("y_train must be finite")
    scale = float(np.mean(np.abs(history[season:] - history[:-season])))
    if scale == 0:
        raise ValueError("mase is undefined: the in-sample seasonal naive error is 0")
    return mae(y_true, y_pred) / scale
