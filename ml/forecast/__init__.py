"""Monthly consumption forecasting: baselines, a global gradient-boosting model, metrics, backtests.

See ``ml/FORECAST_AND_SCORECARD.md``.
"""

from gridcredit.ml.forecast._backtest import (
    BACKTEST_COLUMNS,
    global_model_method,
    rolling_origin_backtest,
    summarise_backtest,
)
from gridcredit.ml.forecast._baselines import seasonal_naive
from gridcredit.ml.forecast._global import (
    GlobalForecaster,
    Panel,
    forecast_global,
    to_monthly_periods,
    to_panel,
)
from gridcredit.ml.forecast._metrics import mae, mase, wape

__all__ = [
    "BACKTEST_COLUMNS",
    "GlobalForecaster",
    "Panel",
    "forecast_global",
    "global_model_method",
    "mae",
    "mase",
    "rolling_origin_backtest",
    "seasonal_naive",
    "summarise_backtest",
    "to_monthly_periods",
    "to_panel",
    "wape",
]
