"""Baseline forecasts."""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd


def _check_positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a positive integer, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def seasonal_naive(history, season: int = 12, horizon: int = 3):
    """Seasonal naive forecast: each future month repeats the same month one season earlier.

    ``forecast[T + h] = history[T + h - season * ceil(h / season)]`` for ``h = 1..horizon``.

    Parameters
    ----------
    history : array-like or pandas.Series
        Ordered past values (oldest first), at least ``season`` long; the last ``season``
        values must be present. A Series with a monthly ``PeriodIndex`` or ``DatetimeIndex``
        gives a Series indexed by the next ``horizon`` months.
    season : int, default=12
        Season length in periods.
    horizon : int, default=3
        Number of periods to forecast.

    Returns
    -------
    numpy.ndarray or pandas.Series
        ``horizon`` forecasts.
    """
    season = _check_positive_int("season", season)
    horizon = _check_positive_int("horizon", horizon)
    values = np.asarray(history, dtype=float).ravel()
    if values.size < season:
        raise ValueError(f"history needs at least season={season} values, got {values.size}")
    last_season = values[-season:]
    forecast = last_season[np.arange(horizon) % season]
    if isinstance(history, pd.Series) and isinstance(history.index, pd.PeriodIndex | pd.DatetimeIndex):
        index = history.index
        periods = index if isinstance(index, pd.PeriodIndex) else index.to_period("M")
        future = pd.period_range(periods[-1] + 1, periods=horizon, freq=periods.freq)
        return pd.Series(forecast, index=future, name=history.name)
    return forecast
