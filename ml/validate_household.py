"""`gridcredit validate household`: rolling-origin backtest of the consumption forecast on real data.

The UCI household series (one house near Paris, daily sums of per-minute kW) becomes monthly kWh
(``Global_active_power / 60`` summed per month, partial first and last months dropped). The
forecaster and the backtest are ``gridcredit.ml.forecast`` (GlobalForecaster vs seasonal naive,
expanding window, origins after month 24, horizons 1-3).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from gridcredit.ml.forecast import rolling_origin_backtest, summarise_backtest

DEFAULT_CSV = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "data"
    / "real"
    / "household_power_daily"
    / "household_power_consumption_days.csv"
)


def monthly_household_kwh(csv: Path | None = None) -> pd.Series:
    daily = pd.read_csv(csv or DEFAULT_CSV, parse_dates=["Datetime"])
    kwh = daily.set_index("Datetime")["Global_active_power"] / 60.0
    days = kwh.groupby(kwh.index.to_period("M")).size()
    monthly = kwh.groupby(kwh.index.to_period("M")).sum()
    complete = days.index[days == days.index.days_in_month]
    return monthly.loc[complete[0] : complete[-1]]


def backtest_household(csv: Path | None = None, out: Path | None = None, first_origin: int = 24) -> dict:
    series = monthly_household_kwh(csv)
    results = rolling_origin_backtest(series, first_origin=first_origin, horizon=3)
    summary = summarise_backtest(results)
    overall = summary[summary["horizon"] == "all"].set_index("method")
    report = {
        "series": "UCI household power, monthly kWh",
        "months": [str(series.index[0]), str(series.index[-1])],
        "origins": int(results["origin_month"].nunique()),
        "model_mae": float(overall.loc["global_gbm", "mae"]),
        "seasonal_naive_mae": float(overall.loc["seasonal_naive", "mae"]),
        "mae_ratio": float(overall.loc["global_gbm", "relative_mae"]),
        "by_horizon": summary.assign(horizon=summary["horizon"].astype(str)).to_dict(orient="records"),
    }
    if out:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    return report
