"""A synthetic feature and label mart with the shape of ``marts_ml`` (tests and benchmarks).

Not the utility simulator: a small, fast stand-in that lets the ML step be tested and timed
without ingesting and building the dbt project. Customers have a latent health that drifts
month to month; arrears, delinquency and consumption follow it, a few customers steal power
(consumption drops, zero runs, meter events) and some are caught by inspections.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import psycopg

INDUSTRIES = list("ABCDEFGHIJ")
REGIONS = [f"{440100 + 100 * i}" for i in range(6)]


def make_marts(
    customers: int = 600, months: int = 30, seed: int = 0, first_month: str = "2022-01", shift_after: int | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Feature and label frames, one row per customer per month.

    Parameters
    ----------
    customers, months : int
        Size.
    seed : int
        Same seed, same frames.
    first_month : str
        First as-of month (YYYY-MM); as-of dates are month starts.
    shift_after : int, optional
        From this month index on, every customer's health drops (a population shift).
    """
    rng = np.random.default_rng(seed)
    n, T = customers, months
    industry = rng.integers(0, len(INDUSTRIES), n)
    region = rng.integers(0, len(REGIONS), n)
    industry_shock = rng.normal(0, 0.3, len(INDUSTRIES))
    health = np.empty((n, T))
    h = rng.normal(1.0, 1.0, n) + industry_shock[industry]
    for t in range(T):
        h = 0.85 * h + 0.15 * (1.0 + industry_shock[industry]) + rng.normal(0, 0.45, n)
        if shift_after is not None and t >= shift_after:
            h = h - 0.05
        health[:, t] = h
    p_arrears = 1 / (1 + np.exp(2.2 * health - 0.3))
    in_arrears = rng.random((n, T)) < p_arrears
    dpd = np.zeros((n, T))
    for t in range(T):
        prev = dpd[:, t - 1] if t else np.zeros(n)
        dpd[:, t] = np.where(in_arrears[:, t], prev + rng.integers(5, 31, n), 0)
    base_kwh = rng.lognormal(6, 1, n)
    season = 1 + 0.25 * np.sin(2 * np.pi * (np.arange(T) % 12) / 12)
    kwh = base_kwh[:, None] * season[None, :] * rng.lognormal(0, 0.1, (n, T)) * (1 + 0.05 * np.tanh(health))
    thief = rng.random(n) < 0.06
    theft_start = rng.integers(0, T, n)
    stealing = thief[:, None] & (np.arange(T)[None, :] >= theft_start[:, None])
    kwh = np.where(stealing, kwh * rng.uniform(0.2, 0.6, (n, 1)), kwh)
    zero_days = np.where(stealing, rng.poisson(6, (n, T)), rng.poisson(0.4, (n, T)))
    meter_events = np.where(stealing, rng.poisson(1.2, (n, T)), rng.poisson(0.05, (n, T)))
    tenure0 = rng.integers(0, 120, n)
    months_idx = pd.period_range(first_month, periods=T, freq="M")
    dates = months_idx.to_timestamp().date

    rows = []
    for t in range(T):
        window = slice(max(0, t - 11), t + 1)
        baseline = kwh[:, max(0, t - 12) : t].mean(axis=1) if t else np.full(n, np.nan)
        peers = pd.Series(kwh[:, t]).groupby(industry).transform("median").to_numpy()
        rows.append(
            pd.DataFrame(
                {
                    "customer_id": [f"C{100000000 + i:09d}" for i in range(n)],
                    "as_of_month": dates[t],
                    "industry_code": np.array(INDUSTRIES)[industry],
                    "region_code": np.array(REGIONS)[region],
                    "days_past_due": dpd[:, t],
                    "max_days_past_due_12m": dpd[:, window].max(axis=1),
                    "months_in_arrears_12m": in_arrears[:, window].sum(axis=1),
                    "is_in_arrears": in_arrears[:, t],
                    "arrears_amount": np.round(in_arrears[:, t] * kwh[:, t] * 0.6 * rng.uniform(0.5, 2, n), 2),
                    "billed_amount": np.round(kwh[:, t] * 0.6, 2),
                    "on_time_payment_rate_12m": 1 - in_arrears[:, window].mean(axis=1),
                    "consumption_kwh": np.round(kwh[:, t], 2),
                    "consumption_vs_baseline_ratio": kwh[:, t] / baseline if t else np.nan,
                    "consumption_vs_peers_ratio": kwh[:, t] / peers,
                    "zero_reading_days": zero_days[:, t],
                    "meter_events_3m": meter_events[:, max(0, t - 2) : t + 1].sum(axis=1),
                    "tenure_months": tenure0 + t,
                    "contract_capacity_kva": np.round(base_kwh / 20, 1),
                    "missing_reading_days": rng.poisson(0.3, n),
                    "legal_event_count_12m": (rng.random(n) < 0.01 * (health[:, t] < 0)).astype(int),
                    "is_dishonest_debtor": rng.random(n) < 0.002,
                    "industry_activity_yoy_ratio": 1 + industry_shock[industry] / 5 + rng.normal(0, 0.01, n),
                }
            )
        )
    features = pd.concat(rows, ignore_index=True)
    # Labels: arrears next month; bad within 12 months (90+ dpd); theft confirmed within 6 months.
    labels = []
    inspected = rng.random((n, T)) < 0.15
    confirmed = stealing & inspected & (rng.random((n, T)) < 0.8)
    for t in range(T):
        nxt = in_arrears[:, t + 1].astype(float) if t + 1 < T else np.full(n, np.nan)
        if t + 12 < T:
            bad = (dpd[:, t + 1 : t + 13] > 90).any(axis=1).astype(float)
        else:
            bad = np.full(n, np.nan)
        theft = confirmed[:, t + 1 : t + 7].any(axis=1).astype(float) if t + 6 < T else np.full(n, np.nan)
        labels.append(
            pd.DataFrame(
                {
                    "customer_id": [f"C{100000000 + i:09d}" for i in range(n)],
                    "as_of_month": dates[t],
                    "is_in_arrears_next_month": nxt,
                    "is_bad_within_12_months": bad,
                    "has_confirmed_theft_within_horizon": theft,
                }
            )
        )
    return features, pd.concat(labels, ignore_index=True)


_PG_TYPES = {"b": "boolean", "i": "bigint", "u": "bigint", "f": "double precision"}


def write_marts(
    pg: psycopg.Connection,
    features: pd.DataFrame,
    labels: pd.DataFrame,
    features_table: str = "marts_ml.fct_customer_month_features",
    labels_table: str = "marts_ml.fct_customer_month_labels",
) -> None:
    """Create (replace) the two mart tables and COPY the frames in; commits."""
    for frame, name in ((features, features_table), (labels, labels_table)):
        schema = name.split(".")[0]
        pg.execute(f"create schema if not exists {schema}")
        pg.execute(f"drop table if exists {name}")
        cols = []
        for column, dtype in frame.dtypes.items():
            if column == "as_of_month":
                kind = "date"
            elif column in (
                "is_in_arrears_next_month",
                "is_bad_within_12_months",
                "has_confirmed_theft_within_horizon",
            ):
                kind = "boolean"
            else:
                kind = _PG_TYPES.get(dtype.kind, "text")
            cols.append(f"{column} {kind}")
        pg.execute(f"create table {name} ({', '.join(cols)}, primary key (customer_id, as_of_month))")
        out = frame.copy()
        for column in out.columns:
            if column.startswith(("is_", "has_")) and out[column].dtype.kind == "f":
                out[column] = out[column].map(lambda v: None if np.isnan(v) else bool(v))
        buffer = io.StringIO()
        out.to_csv(buffer, header=False, index=False, na_rep="")
        with pg.cursor() as cur, cur.copy(f"copy {name} from stdin with (format csv)") as copy:
            copy.write(buffer.getvalue())
        pg.execute(
            f"comment on column {name}.days_past_due is 'Days past due of the oldest unpaid bill at month end.'"
            if name == features_table
            else "select 1"
        )
    pg.commit()
