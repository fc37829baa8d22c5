"""Rolling-origin (expanding window) backtest of one monthly series."""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from gridcredit.ml.forecast._baselines import seasonal_naive
from gridcredit.ml.forecast._global import GlobalForecaster, to_monthly_periods
from gridcredit.ml.forecast._metrics import mae, wape

BACKTEST_COLUMNS = ("method", "origin_month", "target_month", "horizon", "actual", "forecast",
                    "error")


def _seasonal_naive_method(train: pd.Series, horizon: int) -> np.ndarray:
    return np.asarray(seasonal_naive(train.to_numpy(), season=12, horizon=horizon))


def global_model_method(**params) -> Callable[[pd.Series, int], np.ndarray]:
    """A backtest method that fits :class:`GlobalForecaster` on the training window.

    Parameters
    ----------
    **params
        :class:`GlobalForecaster` parameters (not the column names).

    Returns
    -------
    callable
        ``method(train_series, horizon) -> ndarray`` for :func:`rolling_origin_backtest`.
    """

    def method(train: pd.Series, horizon: int) -> np.ndarray:
        frame = pd.DataFrame({"series_id": 0, "month": train.index, "kwh": train.to_numpy()})
        model = GlobalForecaster(horizon=horizon, **params).fit(frame)
        return model.predict(frame)["forecast"].to_numpy()

    return method


DEFAULT_METHODS: dict[str, Callable] = {
    "seasonal_naive": _seasonal_naive_method,
    "global_gbm": global_model_method(),
}


def rolling_origin_backtest(
    series: pd.Series,
    methods: Mapping[str, Callable] | None = None,
    first_origin: int = 24,
    horizon: int = 3,
    step: int = 1,
) -> pd.DataFrame:
    """Expanding-window backtest: refit at each origin, forecast 1..``horizon`` months.

    At origin ``o`` (``o = first_origin, first_origin + step, ...``) every method sees the
    first ``o`` months and forecasts months ``o + 1 .. o + horizon`` (1-based) that exist.

    Parameters
    ----------
    series : pandas.Series
        One monthly series with a ``PeriodIndex``/``DatetimeIndex`` (or month strings),
        oldest first, no gaps, no missing values.
    methods : mapping of str to callable, optional
        ``name -> f(train: pd.Series, horizon: int) -> array of horizon forecasts``.
        Default: ``seasonal_naive`` and ``global_gbm`` (:class:`GlobalForecaster` with
        default settings).
    first_origin : int, default=24
        Months in the first training window (>= 12).
    horizon : int, default=3
        Months ahead.
    step : int, default=1
        Months between origins.

    Returns
    -------
    pandas.DataFrame
        One row per method, origin and horizon: ``method``, ``origin_month`` (last training
        month), ``target_month``, ``horizon``, ``actual``, ``forecast``, ``error``
        (forecast - actual). Summarise with :func:`summarise_backtest`.
    """
    if not isinstance(series, pd.Series):
        raise TypeError(f"series must be a pandas Series, got {type(series).__name__}")
    for name, value, low in (("first_origin", first_origin, 12), ("horizon", horizon, 1),
                             ("step", step, 1)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"{name} must be an integer >= {low}, got {value!r}")
        if value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    months = to_monthly_periods(series.index)
    if len(months) > 1 and not (np.diff(months.asi8) == 1).all():
        raise ValueError("series must be monthly, sorted, without gaps or duplicates")
    if series.isna().any():
        raise ValueError("series has missing values; fill or drop them first")
    if len(series) <= first_origin:
        raise ValueError(f"series has {len(series)} months; need more than first_origin="
                         f"{first_origin}")
    series = pd.Series(series.to_numpy(dtype=float), index=months, name=series.name)
    methods = dict(DEFAULT_METHODS if methods is None else methods)
    rows = []
    for origin in range(first_origin, len(series), step):
        train = series.iloc[:origin]
        steps = min(horizon, len(series) - origin)
        actual = series.iloc[origin:origin + steps].to_numpy()
        for name, method in methods.items():
            forecast = np.asarray(method(train, horizon), dtype=float)[:steps]
            for h in range(steps):
                rows.append((name, months[origin - 1], months[origin + h], h + 1,
                             actual[h], forecast[h], forecast[h] - actual[h]))
    return pd.DataFrame(rows, columns=list(BACKTEST_COLUMNS))


def summarise_backtest(results: pd.DataFrame, baseline: str = "seasonal_naive") -> pd.DataFrame:
    """MAE, WAPE and MAE relative to ``baseline`` per method and horizon (plus ``"all"``).

    Only (origin, horizon) pairs forecast by every method are compared.

    Parameters
    ----------
    results : pandas.DataFrame
        Output of :func:`rolling_origin_backtest`.
    baseline : str, default="seasonal_naive"
        Method whose MAE is the denominator of ``relative_mae``.

    Returns
    -------
    pandas.DataFrame
        Columns ``method``, ``horizon`` (int or ``"all"``), ``n``, ``mae``, ``wape``,
        ``relative_mae``.
    """
    if baseline not in set(results["method"]):
        raise ValueError(f"baseline {baseline!r} not among methods {sorted(set(results['method']))}")
    rows = []
    for (method, horizon), part in [
        *((k, g) for k, g in results.groupby(["method", "horizon"])),
        *(((m, "all"), g) for m, g in results.groupby("method")),
    ]:
        rows.append({"method": method, "horizon": horizon, "n": len(part),
                     "mae": mae(part["actual"], part["forecast"]),
                     "wape": wape(part["actual"], part["forecast"])})
    out = pd.DataFrame(rows)
    base = out[out["method"] == baseline].set_index("horizon")["mae"]
    out["relative_mae"] = out["mae"] / out["horizon"].map(base)
    return out
