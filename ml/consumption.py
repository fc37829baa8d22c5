"""Consumption forecast: kWh per customer for the next 1-3 months, and per industry and region.

The forecaster is :class:`gridcredit.ml.forecast.GlobalForecaster` (one gradient-boosting model
across all customers, scale-free lag features, direct multi-horizon). It is tested out of time
on the last forecast origins whose targets are all observed, against the seasonal-naive forecast
(the same month one year earlier): the MAE ratio must stay below 1.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from psycopg import sql

from gridcredit.ml.features import MONTH_INDEX, Dataset, fingerprint_frame, month_from_index, read_sql_frame
from gridcredit.ml.forecast import GlobalForecaster, mae, wape
from gridcredit.ml.modelling import Plan
from gridcredit.ml.splits import InsufficientHistory, TimeSplit

MODEL_NAME = "consumption_forecast"
OUTPUT_TABLE = "consumption_forecasts"
SEGMENT_TABLE = "consumption_forecasts_by_segment"
SCORE_COLUMN = "kwh_forecast"


def consumption_frame(ds: Dataset, pg=None, cfg: dict | None = None) -> pd.DataFrame:
    """Long frame ``customer_id, month (monthly Period), m (month index), kwh``."""
    if ds.consumption_column:
        # An on-demand dataset reads only the keys and kWh of every month here (a narrow frame).
        frame = ds.window(ds.months, [ds.consumption_column]).frame if ds.on_demand else ds.frame
        part = frame[[ds.customer_col, MONTH_INDEX, ds.consumption_column]].rename(
            columns={ds.customer_col: "customer_id", MONTH_INDEX: "m", ds.consumption_column: "kwh"}
        )
    elif pg is not None and cfg is not None:
        from gridcredit.ml.features import month_index, table_exists

        inputs = cfg["inputs"]
        table = inputs.get("consumption_table")
        if not table or not table_exists(pg, table):
            raise InsufficientHistory("no consumption column in the features and no consumption table")
        schema, name = table.split(".")
        query = sql.SQL("select {c}::text as customer_id, {m}::date as month, {k}::float8 as kwh from {s}.{t}").format(
            c=sql.Identifier(ds.customer_col),
            m=sql.Identifier(inputs["consumption_month_column"]),
            k=sql.Identifier(inputs["consumption_column"]),
            s=sql.Identifier(schema),
            t=sql.Identifier(name),
        )
        part = read_sql_frame(pg, query, dtypes={"customer_id": "string", "month": "date", "kwh": "float"})
        part["m"] = month_index(part["month"])
        part = part[["customer_id", "m", "kwh"]]
    else:
        raise InsufficientHistory("no consumption column in the features")
    part = part.dropna(subset=["kwh"]).copy()
    part["customer_id"] = part["customer_id"].astype(str)
    part["kwh"] = part["kwh"].astype(float)
    part["month"] = pd.PeriodIndex.from_ordinals(part["m"].to_numpy() - (1970 * 12), freq="M")
    return part.sort_values(["customer_id", "m"], kind="stable", ignore_index=True)


class ConsumptionModel:
    """The fitted global forecaster, optionally combined with seasonal naive.

    ``naive_weight`` w gives ``(1 - w) * model + w * seasonal naive`` where last year's value
    exists (the model alone elsewhere): an equal-weight combination (w = 0.5) is the classic,
    robust choice (forecast combination; Clemen 1989, the M4 competition) and is not tuned on
    the test months.
    """

    def __init__(
        self,
        forecaster: GlobalForecaster,
        train_last_month: int,
        horizon: int,
        learned_months=(),
        naive_weight: float = 0.0,
    ):
        self.forecaster = forecaster
        self.train_last_month = int(train_last_month)
        self.horizon = int(horizon)
        self.learned_months = set(int(m) for m in learned_months)
        self.naive_weight = float(naive_weight)

    def forecast_from(self, long: pd.DataFrame, origin: int, lookup: KwhLookup) -> pd.DataFrame:
        """Forecasts made at the end of month ``origin`` for customers observed that month
        (``lookup``: the long frame's :class:`KwhLookup`)."""
        history = long[long["m"] <= origin]
        observed = history.loc[history["m"] == origin, "customer_id"].unique()
        history = history[history["customer_id"].isin(observed)]
        if history.empty:
            return pd.DataFrame(
                columns=["customer_id", "origin", "target", "horizon", "forecast", "model_forecast", "method"]
            )
        pred = self.forecaster.predict(history[["customer_id", "month", "kwh"]])
        origin_index = pd.PeriodIndex(pred["origin_month"]).asi8 + 1970 * 12
        pred = pred[origin_index == origin].copy()
        pred["origin"] = origin
        pred["target"] = origin + pred["horizon"].astype(int)
        pred["model_forecast"] = pred["forecast"].astype(float)
        weight = getattr(self, "naive_weight", 0.0)  # models pickled before the combination existed
        if weight > 0:
            naive = lookup.get(pred["customer_id"], pred["target"] - 12)
            combined = (1 - weight) * pred["model_forecast"] + weight * naive
            has = ~np.isnan(naive)
            pred["forecast"] = np.where(has, combined, pred["model_forecast"])
            pred["method"] = np.where(has & (pred["method"] == "model"), "model+seasonal_naive", pred["method"])
        return pred[["customer_id", "origin", "target", "horizon", "forecast", "model_forecast", "method"]]


class KwhLookup:
    """kWh by (customer, month index) of the long frame, NaN where it has no row.

    A dense customers x months array built once per model: the forecast reads last year's kWh and
    the actuals for every origin and batch, and keying the 3.6 M-row long frame again for each read
    (a MultiIndex) cost 0.4 s per read at 100k customers, three reads a batch (docs/BENCHMARKS.md,
    change log, session 10).
    """

    def __init__(self, long: pd.DataFrame):
        self.customers = pd.Index(pd.unique(long["customer_id"]))
        months = long["m"].to_numpy(dtype=np.int64)
        self.first = int(months.min()) if len(months) else 0
        width = int(months.max()) - self.first + 1 if len(months) else 0
        self.values = np.full((len(self.customers), width), np.nan)
        self.values[self.customers.get_indexer(long["customer_id"]), months - self.first] = long["kwh"].to_numpy(
            dtype=float
        )

    def get(self, customers, months) -> np.ndarray:
        rows = self.customers.get_indexer(np.asarray(customers))
        columns = np.asarray(months, dtype=np.int64) - self.first
        found = (rows >= 0) & (columns >= 0) & (columns < self.values.shape[1])
        out = np.full(len(rows), np.nan)
        out[found] = self.values[rows[found], columns[found]]
        return out


def _test_origins(months: list[int], horizon: int, n_origins: int) -> list[int]:
    last = max(months)
    return [o for o in range(last - horizon - n_origins + 1, last - horizon + 1) if o in months]


def plan(ds: Dataset, cfg: dict, long: pd.DataFrame) -> Plan:
    section = cfg[MODEL_NAME]
    horizon = int(section["horizon"])
    months = sorted(long["m"].unique().tolist())
    if not months:
        raise InsufficientHistory("no consumption data")
    origins = _test_origins(months, horizon, int(section["test_origins"]))
    min_history = int(section["min_history_months"])
    if not origins or origins[0] - months[0] + 1 < min_history + horizon:
        raise InsufficientHistory(
            f"{len(months)} months of consumption; at least "
            f"{min_history + 2 * horizon + int(section['test_origins']) - 1} "
            "needed to train and test a forecast out of time"
        )
    train = tuple(m for m in months if m <= origins[0])
    test = tuple(m for m in months if m > origins[0])
    return Plan(
        model_name=MODEL_NAME,
        split=TimeSplit(train, (), test),
        label_column=None,
        train_rows=np.array([], dtype=int),
        validation_rows=np.array([], dtype=int),
        test_rows=np.array(origins, dtype=int),
        features=["kwh"],
        data_fingerprint=fingerprint_frame(long[["customer_id", "m", "kwh"]]),
        parameters={"test_origins": origins},
    )


def fit(ds: Dataset, p: Plan, cfg: dict, long: pd.DataFrame) -> ConsumptionModel:
    section = cfg[MODEL_NAME]
    params = dict(section.get("forecaster") or {})
    train_last = max(p.split.train)
    forecaster = GlobalForecaster(
        horizon=int(section["horizon"]),
        series_col="customer_id",
        time_col="month",
        target_col="kwh",
        min_history=max(12, int(section["min_history_months"]) - 1),
        random_state=int(cfg["discipline"]["seed"]),
        **params,
    )
    forecaster.fit(long.loc[long["m"] <= train_last, ["customer_id", "month", "kwh"]])
    p.parameters.update(
        {"forecaster": params, "horizon": int(section["horizon"]), "n_train_rows": int(forecaster.n_train_rows_)}
    )
    weight = float(section.get("seasonal_naive_weight", 0.0))
    p.parameters["seasonal_naive_weight"] = weight
    return ConsumptionModel(forecaster, train_last, int(section["horizon"]), p.split.train, weight)


def _with_naive(pred: pd.DataFrame, lookup: KwhLookup) -> pd.DataFrame:
    pred = pred.copy()
    pred["seasonal_naive"] = lookup.get(pred["customer_id"], pred["target"] - 12)
    pred["actual"] = lookup.get(pred["customer_id"], pred["target"])
    return pred


def evaluate(model: ConsumptionModel, ds: Dataset, p: Plan, cfg: dict, long: pd.DataFrame) -> tuple[dict, pd.DataFrame]:
    """MAE of the model / MAE of seasonal naive on the held-out origins, MASE, WAPE, per horizon."""
    lookup = KwhLookup(long)
    parts = [model.forecast_from(long, int(o), lookup) for o in p.test_rows]
    pred = _with_naive(pd.concat(parts, ignore_index=True), lookup)
    pred = pred[(pred["target"] <= long["m"].max())].dropna(subset=["actual", "seasonal_naive"])
    if pred.empty:
        raise InsufficientHistory("no held-out forecast has both an actual and a seasonal-naive value")
    train = long[long["m"] <= model.train_last_month]
    lag = train.set_index(["customer_id", "m"])["kwh"]
    prev = lag.reindex(pd.MultiIndex.from_arrays([train["customer_id"], train["m"] - 12])).to_numpy()
    diffs = np.abs(train["kwh"].to_numpy() - prev)
    scale = float(np.nanmean(diffs)) if np.isfinite(diffs).any() else float("nan")
    model_mae = mae(pred["actual"], pred["forecast"])
    naive_mae = mae(pred["actual"], pred["seasonal_naive"])
    global_mae = mae(pred["actual"], pred["model_forecast"])
    metrics = {
        "mae": model_mae,
        "seasonal_naive_mae": naive_mae,
        "mae_ratio": model_mae / naive_mae if naive_mae > 0 else None,
        "global_model_only_mae_ratio": global_mae / naive_mae if naive_mae > 0 else None,
        "seasonal_naive_weight": getattr(model, "naive_weight", 0.0),
        "mase": model_mae / scale if scale > 0 else None,
        "seasonal_naive_mase": naive_mae / scale if scale > 0 else None,
        "wape": wape(pred["actual"], pred["forecast"]),
        "seasonal_naive_wape": wape(pred["actual"], pred["seasonal_naive"]),
        "n_test_forecasts": int(len(pred)),
        "test_origins": [f"{month_from_index(o):%Y-%m}" for o in p.test_rows],
    }
    for h, part in pred.groupby("horizon"):
        naive_h = mae(part["actual"], part["seasonal_naive"])
        metrics[f"mae_ratio_h{int(h)}"] = mae(part["actual"], part["forecast"]) / naive_h if naive_h > 0 else None
    return metrics, pd.DataFrame()


def _target_date(as_of: pd.Timestamp, months_ahead: int):
    ts = pd.Timestamp(as_of)
    shifted = ts + pd.DateOffset(months=months_ahead)
    if (ts + pd.Timedelta(days=1)).day == 1:  # month-end convention: stay at month end
        shifted = shifted + pd.offsets.MonthEnd(0)
    return shifted.date()


def score(
    model: ConsumptionModel, ds: Dataset, months, cfg: dict, long: pd.DataFrame, lookup: KwhLookup | None = None
) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """Forecasts from each of ``months`` and their segment sums; ``lookup``: the long frame's
    :class:`KwhLookup` when the caller scores several batches (built here otherwise)."""
    month_dates = ds.frame.drop_duplicates(MONTH_INDEX).set_index(MONTH_INDEX)[ds.month_col]
    lookup = lookup if lookup is not None else KwhLookup(long)
    parts = []
    for m in sorted(int(x) for x in months):
        pred = model.forecast_from(long, m, lookup)
        if pred.empty:
            continue
        parts.append(pred)
    columns = [
        "customer_id",
        "as_of_month",
        MONTH_INDEX,
        "target_month",
        "horizon",
        "kwh_forecast",
        "global_model_kwh",
        "seasonal_naive_kwh",
        "method",
        "is_in_training_window",
    ]
    if not parts:
        return {OUTPUT_TABLE: pd.DataFrame(columns=columns), SEGMENT_TABLE: pd.DataFrame()}, []
    pred = _with_naive(pd.concat(parts, ignore_index=True), lookup)
    as_of = pred["origin"].map(month_dates)
    # Few distinct (as-of month, horizon) pairs: compute each target date once.
    pair_codes, pairs = pd.MultiIndex.from_arrays([as_of, pred["horizon"].astype(int)]).factorize()
    target_dates = np.array([_target_date(a, h) for a, h in pairs], dtype=object)[pair_codes]
    out = pd.DataFrame(
        {
            "customer_id": pred["customer_id"].astype(str),
            "as_of_month": as_of.dt.date,
            MONTH_INDEX: pred["origin"].astype(int),
            "target_month": target_dates,
            "horizon": pred["horizon"].astype(int),
            "kwh_forecast": pred["forecast"].astype(float),
            "global_model_kwh": pred["model_forecast"].astype(float),
            "seasonal_naive_kwh": pred["seasonal_naive"].astype(float),
            "method": pred["method"].astype(str),
            "is_in_training_window": (pred["target"] <= model.train_last_month).to_numpy(),
        }
    )
    out = out.sort_values([MONTH_INDEX, "customer_id", "horizon"], kind="stable", ignore_index=True)
    segments = []
    if ds.segments:
        attrs = ds.frame[[ds.customer_col, MONTH_INDEX, *ds.segments.values()]].rename(
            columns={ds.customer_col: "customer_id"}
        )
        merged = out.merge(attrs, on=["customer_id", MONTH_INDEX], how="left")
        for seg_type, column in sorted(ds.segments.items()):
            grouped = merged.groupby([column, "as_of_month", "target_month", "horizon"], sort=True, dropna=False)
            agg = grouped.agg(
                customers=("customer_id", "size"),
                kwh_forecast=("kwh_forecast", "sum"),
                seasonal_naive_kwh=("seasonal_naive_kwh", "sum"),
                customers_with_seasonal_naive=("seasonal_naive_kwh", "count"),
            ).reset_index()
            agg.insert(0, "segment_type", seg_type)
            agg = agg.rename(columns={column: "segment_code"})
            agg["segment_code"] = agg["segment_code"].astype(str)
            segments.append(agg)
    seg = pd.concat(segments, ignore_index=True) if segments else pd.DataFrame()
    return {OUTPUT_TABLE: out, SEGMENT_TABLE: seg}, []
