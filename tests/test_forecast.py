"""Tests for gridcredit.ml.forecast: metrics, seasonal naive, global model, backtests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gridcredit.ml.forecast import (
    BACKTEST_COLUMNS,
    GlobalForecaster,
    forecast_global,
    mae,
    mase,
    rolling_origin_backtest,
    seasonal_naive,
    summarise_backtest,
    to_panel,
    wape,
)

HOUSEHOLD = (Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
             / "household_power_daily" / "household_power_consumption_days.csv")


def synthetic_panel(n_series: int = 300, n_months: int = 48, seed: int = 0) -> pd.DataFrame:
    """Seeded long frame: per-series level, seasonal amplitude/phase, trend, 12 % noise."""
    rng = np.random.default_rng(seed)
    level = rng.lognormal(6, 0.6, n_series)
    amplitude = rng.uniform(0.1, 0.5, n_series)
    phase = rng.normal(0, 0.5, n_series)
    trend = rng.normal(0, 0.01, n_series)
    t = np.arange(n_months)
    season = 1 + amplitude[:, None] * np.cos(2 * np.pi * t[None, :] / 12 + phase[:, None])
    kwh = (level[:, None] * season * np.exp(trend[:, None] * t[None, :])
           * rng.lognormal(0, 0.12, (n_series, n_months)))
    months = pd.period_range("2021-01", periods=n_months, freq="M")
    return pd.DataFrame({
        "series_id": np.repeat([f"c{i:04d}" for i in range(n_series)], n_months),
        "month": np.tile(months, n_series),
        "kwh": kwh.ravel(),
        "temperature": np.tile(12 + 8 * np.cos(2 * np.pi * t / 12), n_series),
    })


def household_monthly() -> pd.Series:
    """Monthly kWh of the real household: Global_active_power / 60 summed per complete month."""
    daily = pd.read_csv(HOUSEHOLD, parse_dates=["Datetime"])
    kwh = daily.set_index("Datetime")["Global_active_power"].div(60)
    by_month = kwh.groupby(kwh.index.to_period("M"))
    days = by_month.count()
    complete = days == days.index.days_in_month  # drop the partial first and last months
    return by_month.sum()[complete].rename("kwh")


# -- metrics (hand examples) -------------------------------------------------------------------
def test_mae_hand_example():
    assert mae([10, 20, 30], [12, 18, 33]) == pytest.approx(7 / 3)


def test_wape_hand_example():
    assert wape([10, 20, 30], [12, 18, 33]) == pytest.approx(7 / 60)


def test_mase_hand_example():
    # in-sample seasonal (2) naive errors |4-1|, |8-2| -> scale 4.5
    assert mase([10, 20, 30], [12, 18, 33], y_train=[1, 2, 4, 8], season=2) == pytest.approx(
        (7 / 3) / 4.5)


def test_metric_errors():
    with pytest.raises(ValueError, match="differ in length"):
        mae([1, 2], [1])
    with pytest.raises(ValueError, match="finite"):
        mae([1, np.nan], [1, 2])
    with pytest.raises(ValueError, match="every actual is 0"):
        wape([0, 0], [1, 2])
    with pytest.raises(ValueError, match="more than season"):
        mase([1], [1], y_train=[1, 2], season=2)
    with pytest.raises(ValueError, match="season"):
        mase([1], [1], y_train=[1, 2, 3], season=0)
    with pytest.raises(ValueError, match="seasonal naive error is 0"):
        mase([1], [1], y_train=[5, 5, 5], season=1)


# -- seasonal naive ----------------------------------------------------------------------------
def test_seasonal_naive_hand_example():
    assert seasonal_naive(np.arange(1, 15), season=12, horizon=3).tolist() == [3, 4, 5]
    # horizons beyond one season wrap around the last season
    assert seasonal_naive([1, 2, 3, 4, 5, 6], season=4, horizon=6).tolist() == [3, 4, 5, 6, 3, 4]


def test_seasonal_naive_keeps_monthly_index():
    history = pd.Series(np.arange(24.0), index=pd.period_range("2022-01", periods=24, freq="M"))
    forecast = seasonal_naive(history, horizon=2)
    assert list(forecast.index.astype(str)) == ["2024-01", "2024-02"]
    assert forecast.tolist() == [12.0, 13.0]


@pytest.mark.parametrize(("kwargs", "error"), [
    ({"season": 0}, ValueError),
    ({"season": 1.5}, TypeError),
    ({"horizon": 0}, ValueError),
    ({"season": 30}, ValueError),  # history shorter than one season
])
def test_seasonal_naive_bad_arguments(kwargs, error):
    with pytest.raises(error):
        seasonal_naive(np.arange(24.0), **kwargs)


# -- global model ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def panel():
    return synthetic_panel()


def test_global_model_beats_seasonal_naive_on_many_series(panel):
    cut = panel["month"].max() - 3
    train, test = panel[panel["month"] <= cut], panel[panel["month"] > cut]
    forecasts = forecast_global(train, horizon=3)
    merged = forecasts.merge(test, left_on=["series_id", "target_month"],
                             right_on=["series_id", "month"], validate="one_to_one")
    assert len(merged) == 300 * 3
    history = train.pivot(index="series_id", columns="month", values="kwh")
    naive = pd.DataFrame({
        "series_id": np.repeat(history.index, 3),
        "target_month": np.tile(pd.period_range(cut + 1, periods=3, freq="M"), len(history)),
        "naive": np.concatenate([seasonal_naive(row, horizon=3) for row in history.to_numpy()]),
    })
    merged = merged.merge(naive, on=["series_id", "target_month"])
    ratio = mae(merged["kwh"], merged["forecast"]) / mae(merged["kwh"], merged["naive"])
    print(f"\nsynthetic 300 series: global / seasonal naive MAE = {ratio:.3f}")
    assert ratio < 0.85


def test_global_model_output_layout(panel):
    train = panel[panel["month"] <= panel["month"].max() - 3]
    model = GlobalForecaster(horizon=2, exog_cols=["temperature"], max_iter=30).fit(train)
    out = model.predict(train)
    assert list(out.columns) == ["series_id", "origin_month", "target_month", "horizon",
                                 "forecast", "method"]
    assert len(out) == 300 * 2
    assert (out["target_month"] - out["origin_month"]).map(lambda d: d.n).tolist() == \
        out["horizon"].tolist()
    assert (out["forecast"] >= 0).all() and (out["method"] == "model").all()
    assert "temperature_origin" in model.feature_names_


def test_global_model_handles_ragged_and_short_series(panel):
    frame = panel[panel["series_id"].isin(["c0000", "c0001", "c0002"])].copy()
    ends_early = (frame["series_id"] == "c0001") & (frame["month"] > frame["month"].max() - 5)
    too_short = (frame["series_id"] == "c0002") & (frame["month"] < frame["month"].max() - 6)
    frame = frame[~ends_early & ~too_short]
    out = forecast_global(frame, horizon=3, max_iter=20).set_index(["series_id", "horizon"])
    last = frame["month"].max()
    assert out.loc[("c0000", 1), "origin_month"] == last
    assert out.loc[("c0001", 1), "origin_month"] == last - 5
    assert out.loc[("c0002", 1), "method"] == "fallback"  # 7 months of history
    assert out["forecast"].notna().all()


def test_to_panel_is_dense_and_rejects_duplicates(panel):
    small = panel[panel["series_id"].isin(["c0000", "c0001"])]
    dense = to_panel(small, "series_id", "month", "kwh", [])
    assert dense.values.shape == (2, 48)
    assert dense.values[1, 5] == pytest.approx(
        small[(small["series_id"] == "c0001") & (small["month"] == dense.months[5])]["kwh"].item())
    with pytest.raises(ValueError, match="more than one row"):
        to_panel(pd.concat([small, small.head(1)]), "series_id", "month", "kwh", [])


def test_month_column_may_hold_dates(panel):
    small = panel[panel["series_id"].isin(["c0000", "c0001"])].copy()
    small["month"] = small["month"].dt.to_timestamp()
    out = forecast_global(small, horizon=1, max_iter=10)
    assert str(out["target_month"].iloc[0]) == "2025-01"


@pytest.mark.parametrize(("params", "error"), [
    ({"horizon": 0}, ValueError),
    ({"horizon": 13}, ValueError),
    ({"horizon": "3"}, TypeError),
    ({"min_history": 6}, ValueError),
    ({"anchor": "drift"}, ValueError),
    ({"loss": "huber"}, ValueError),
    ({"min_samples_leaf": "small"}, TypeError),
    ({"exog_cols": "temperature"}, TypeError),
    ({"n_threads": 0}, ValueError),
])
def test_global_model_bad_parameters(panel, params, error):
    with pytest.raises(error):
        GlobalForecaster(**params).fit(panel)


def test_global_model_errors_name_allowed_values(panel):
    with pytest.raises(ValueError, match="seasonal_naive"):
        GlobalForecaster(anchor="drift").fit(panel)
    with pytest.raises(ValueError, match="'watts' not in frame"):
        GlobalForecaster(target_col="watts").fit(panel)
    with pytest.raises(ValueError, match="more than min_history"):
        GlobalForecaster().fit(panel[panel["month"] < panel["month"].min() + 12])


# -- backtest ----------------------------------------------------------------------------------
def test_backtest_hand_example():
    series = pd.Series(np.arange(1.0, 27.0), index=pd.period_range("2020-01", periods=26,
                                                                     freq="M"))
    results = rolling_origin_backtest(
        series, methods={"seasonal_naive": lambda train, h: seasonal_naive(train.to_numpy(),
                                                                            horizon=h),
                         "last_value": lambda train, h: np.repeat(train.iloc[-1], h)},
        first_origin=24, horizon=3)
    assert list(results.columns) == list(BACKTEST_COLUMNS)
    # origin 24 (2021-12): targets 25, 26; origin 25: target 26
    naive = results[results["method"] == "seasonal_naive"]
    assert naive["actual"].tolist() == [25.0, 26.0, 26.0]
    assert naive["forecast"].tolist() == [13.0, 14.0, 14.0]
    assert str(naive["origin_month"].iloc[0]) == "2021-12"
    summary = summarise_backtest(results).set_index(["method", "horizon"])
    assert summary.loc[("seasonal_naive", "all"), "mae"] == pytest.approx(12.0)
    assert summary.loc[("last_value", "all"), "mae"] == pytest.approx((1 + 2 + 1) / 3)
    assert summary.loc[("last_value", 1), "relative_mae"] == pytest.approx(1 / 12)
    assert summary.loc[("last_value", "all"), "wape"] == pytest.approx(4 / 77)


def test_backtest_bad_arguments():
    series = pd.Series(np.arange(30.0), index=pd.period_range("2020-01", periods=30, freq="M"))
    with pytest.raises(TypeError, match="Series"):
        rolling_origin_backtest(series.to_numpy())
    with pytest.raises(ValueError, match="first_origin"):
        rolling_origin_backtest(series, first_origin=6)
    with pytest.raises(ValueError, match="more than first_origin"):
        rolling_origin_backtest(series, first_origin=30)
    with pytest.raises(ValueError, match="without gaps"):
        rolling_origin_backtest(series.drop(series.index[3]))
    with pytest.raises(ValueError, match="missing values"):
        rolling_origin_backtest(series.where(series != 5))


@pytest.mark.skipif(not HOUSEHOLD.exists(), reason="real household power data not available")
def test_household_rolling_origin_backtest(tmp_path):
    """Real single series, 46 complete months; origins from month 24, horizons 1-3.

    Measured: global / seasonal naive MAE = 0.867 overall (seasonal naive 61.5 kWh, WAPE 8.0 %).
    Issue 4 asks for a ratio below 1; the seeds are fixed, so a settings change that loses to
    seasonal naive on this series fails here.
    """
    monthly = household_monthly()
    assert len(monthly) == 46
    assert str(monthly.index[0]) == "2007-01" and str(monthly.index[-1]) == "2010-10"
    results = rolling_origin_backtest(monthly, first_origin=24, horizon=3)
    summary = summarise_backtest(results)
    summary.to_csv(tmp_path / "household_backtest_summary.csv", index=False)
    overall = summary[summary["horizon"] == "all"].set_index("method")
    print("\nhousehold backtest\n" + summary.round(3).to_string(index=False))
    assert overall.loc["seasonal_naive", "n"] == overall.loc["global_gbm", "n"] == 22 + 21 + 20
    # The seasonal naive rows are exactly last year's same month.
    naive = results[results["method"] == "seasonal_naive"]
    year_before = monthly.reindex(naive["target_month"] - 12).to_numpy()
    np.testing.assert_allclose(naive["forecast"], year_before)
    assert overall.loc["seasonal_naive", "mae"] == pytest.approx(
        np.mean(np.abs(naive["actual"].to_numpy() - year_before)))
    relative = overall.loc["global_gbm", "relative_mae"]
    assert np.isfinite(relative) and 0.3 < relative < 1.0
