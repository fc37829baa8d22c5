"""The ML step against a real PostgreSQL: determinism, backfill, the promotion gate, atomic write-back.

One database per module holds a small synthetic feature/label mart (gridcredit.ml.synthetic) and
the outputs of a first `score_all`; the other tests build on it.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pandas as pd
import psycopg
import pytest
import yaml
from conftest import clone_database, drop_database

from gridcredit import warehouse
from gridcredit.ml.config import CONFIG_PATH, deep_merge, load_config
from gridcredit.ml.schema import table_checksums
from gridcredit.ml.scoring import score_all
from gridcredit.ml.synthetic import make_marts, write_marts
from gridcredit.ml.writeback import BuildArea, Scope

# Smaller models than production so the module runs in well under a minute on 2 busy cores.
FAST = {
    "arrears_warning": {"gbm": {"max_iter": 60}, "reason_features": 6},
    "theft_suspicion": {"gbm": {"max_iter": 40}, "isolation_forest": {"n_estimators": 40}, "reason_features": 6},
    "consumption_forecast": {"forecaster": {"max_iter": 50}},
    "credit_score": {"scorecard": {"max_n_bins": 4}},
}
ML_TABLES = ("credit_scores", "arrears_warnings", "theft_suspicion", "consumption_forecasts")


@pytest.fixture(scope="module")
def fast_cfg() -> dict:
    return load_config(overrides=FAST)


@pytest.fixture(scope="module")
def ml_db(session_warehouse: warehouse.Connection, fast_cfg: dict):
    """A database with synthetic marts (300 customers x 27 months) and a first scoring run."""
    name = f"t_ml_{uuid.uuid4().hex[:10]}"
    admin = session_warehouse.with_dbname("postgres")
    with psycopg.connect(admin.url, autocommit=True) as pg:
        pg.execute(f'create database "{name}"')
    conn = session_warehouse.with_dbname(name)
    features, labels = make_marts(customers=300, months=27, seed=11)
    with psycopg.connect(conn.url) as pg:
        write_marts(pg, features, labels)
    summary = score_all(conn, cfg=fast_cfg)
    yield conn, summary
    with psycopg.connect(admin.url, autocommit=True) as pg:
        pg.execute(f'drop database if exists "{name}" with (force)')


def checksums(conn, schema: str = "ml") -> dict:
    with psycopg.connect(conn.url) as pg:
        return table_checksums(pg, schema)


def test_first_run_promotes_and_backfills_12_months(ml_db):
    conn, summary = ml_db
    for name, outcome in summary["models"].items():
        assert outcome["status"] == "promoted", (name, outcome["reason"])
        assert len(outcome["months_scored"]) == 12, name
    with psycopg.connect(conn.url) as pg:
        months = pg.execute("select count(distinct as_of_month), count(*) from ml.credit_scores").fetchone()
        assert months == (12, 12 * 300)
        flags = pg.execute(
            "select count(*) filter (where is_in_training_window), count(*) filter (where not "
            "is_in_training_window) from ml.arrears_warnings"
        ).fetchone()
        assert flags[0] > 0 and flags[1] > 0  # old months in-sample, recent ones out of time
        runs = pg.execute(
            "select model_name, train_window_last_month < test_first_month, is_current, "
            "metrics ? 'auc' or metrics ? 'mae_ratio' from ml.model_runs"
        ).fetchall()
        assert len(runs) == 4 and all(r[1] and r[2] and r[3] for r in runs)
        grades = {r[0] for r in pg.execute("select distinct final_grade from ml.credit_scores")}
        assert grades <= {"AAA", "AA", "A", "B", "C"}
        levels = {r[0] for r in pg.execute("select distinct warning_level from ml.arrears_warnings")}
        assert levels <= {"red", "orange", "yellow", "none"} and "none" in levels
        listed = pg.execute(
            "select max(n) from (select count(*) as n from ml.theft_suspicion "
            "where is_on_inspection_list group by as_of_month) as m"
        ).fetchone()[0]
        assert listed == load_config()["theft_suspicion"]["inspection_capacity"]


@pytest.mark.parametrize("model_name", ["credit_score", "arrears_warning", "theft_suspicion", "consumption_forecast"])
def test_scoring_month_by_month_equals_scoring_all_months_at_once(ml_db, fast_cfg, model_name):
    """ADR 0036: `gridcredit score` scores one as-of month at a time to bound its memory, and (ADR
    0097) reads each batch's months on demand. Every output row (ranks, levels, reasons, segment and
    environment warnings) must equal one call over the whole backfill window, on the whole read of
    the feature mart, with the same model."""
    from types import SimpleNamespace

    from gridcredit.ml import consumption, scoring
    from gridcredit.ml.features import load_dataset, open_dataset
    from gridcredit.ml.registry import current_run, load_artifact

    conn, _ = ml_db
    with psycopg.connect(conn.url) as pg:
        ds, lazy = load_dataset(pg, fast_cfg), open_dataset(pg, fast_cfg)
        model = load_artifact(pg, current_run(pg, model_name)["run_id"])
        months = ds.months[-5:]
        long = consumption.consumption_frame(ds) if model_name == "consumption_forecast" else None
        extra = (long,) if long is not None else ()
        whole, _ = scoring.MODULES[model_name].score(model, ds, months, fast_cfg, *extra)
        lazy_long = consumption.consumption_frame(lazy) if long is not None else None
        if long is not None:
            pd.testing.assert_frame_equal(lazy_long, long, check_exact=True)
        context = SimpleNamespace(ds=lazy, cfg=fast_cfg, long=lazy_long)
        by_month, _ = scoring._score(model_name, context, model, months, max_rows=1)  # one month per batch
    assert len(scoring.score_batches(lazy, months, max_rows=1)) == len(months)
    assert set(by_month) == set(whole)

    def as_written(frame: pd.DataFrame) -> pd.DataFrame:
        """What COPY writes (any missing value is NULL), in key order (the table's content, not row order)."""
        keys = [c for c in ("segment_type", "segment_code", "customer_id", "as_of_month", "target_month") if c in frame]
        keys += [c for c in ("horizon",) if c in frame]
        frame = frame.sort_values(keys, kind="stable", ignore_index=True)
        return frame.astype(object).where(frame.notna(), None)

    for table, frame in whole.items():
        assert len(frame), table
        pd.testing.assert_frame_equal(as_written(by_month[table]), as_written(frame), check_exact=True, obj=table)


def test_on_demand_dataset_reads_the_same_rows_as_the_whole_read(ml_db, fast_cfg):
    """ADR 0097: the score stage reads months on demand instead of holding the whole feature mart.
    Its summary (months, rows and known labels per month, dates), any window of months, each model's
    training rows (sampled: the row cap is below the labelled rows) and the feature PSI must equal
    what the whole read gives, value for value, with the same dtypes and order."""
    import copy

    from gridcredit.ml import arrears, credit, theft
    from gridcredit.ml.features import MONTH_INDEX, load_dataset, open_dataset
    from gridcredit.ml.scoring import feature_psi

    cfg = copy.deepcopy(fast_cfg)
    cfg["discipline"]["max_train_rows"] = 1_000
    conn, _ = ml_db
    with psycopg.connect(conn.url) as pg:
        whole, lazy = load_dataset(pg, cfg), open_dataset(pg, cfg)
        assert lazy.on_demand and not whole.on_demand and lazy.frame.empty
        assert (lazy.months, lazy.latest_month, lazy.n_rows) == (whole.months, whole.latest_month, len(whole.frame))
        assert lazy.month_row_counts() == whole.month_row_counts()
        assert lazy.month_dates(lazy.months) == whole.month_dates(whole.months)
        pd.testing.assert_frame_equal(lazy.frame, whole.frame.iloc[:0], check_exact=True)
        for role, column in whole.labels.items():
            assert lazy.label_counts(column) == whole.label_counts(column), column
            assert lazy.labelled_months(role, 1) == whole.labelled_months(role, 1), role

        def rows_of(frame: pd.DataFrame, months, columns=None) -> pd.DataFrame:
            part = frame[frame[MONTH_INDEX].isin(months)].reset_index(drop=True)
            return part if columns is None else part[[c for c in part.columns if c in columns]]

        months = [whole.months[0], whole.months[5], whole.months[-1]]
        pd.testing.assert_frame_equal(lazy.window(months).frame, rows_of(whole.frame, months), check_exact=True)
        label = whole.labels["bad_within_12_months"]
        keys = [whole.customer_col, whole.month_col, MONTH_INDEX]
        pd.testing.assert_frame_equal(
            lazy.window(months, [label]).frame, rows_of(whole.frame, months, [*keys, label]), check_exact=True
        )

        anomaly_cfg = copy.deepcopy(cfg)  # too few confirmed thefts: the anomaly-only plan (all rows of a month)
        anomaly_cfg["discipline"]["min_positives"] = 10**9
        plans = [
            ("credit_score", lambda ds: credit.plan(ds, cfg)),
            ("arrears_warning", lambda ds: arrears.plan(ds, cfg)),
            ("theft_suspicion anomaly", lambda ds: theft.plan(ds, anomaly_cfg)),
        ]
        sampled = False
        for name, make in plans:
            a, b = make(whole), make(lazy)
            assert (a.split, a.features, a.data_fingerprint) == (b.split, b.features, b.data_fingerprint), name
            assert b.data is not None and len(b.data.frame) < len(whole.frame), name
            for part in ("train_rows", "validation_rows", "test_rows"):
                pd.testing.assert_frame_equal(
                    b.data.frame.iloc[getattr(b, part)].reset_index(drop=True),
                    whole.frame.iloc[getattr(a, part)].reset_index(drop=True),
                    check_exact=True,
                    obj=f"{name} {part}",
                )
            sampled |= len(a.train_rows) == cfg["discipline"]["max_train_rows"]
        assert sampled  # the row cap drew a sample: positions were chosen before any row was read

        recent = whole.months[-4:]
        pd.testing.assert_frame_equal(
            feature_psi(lazy, recent, 10, 0.1, 0.25), feature_psi(whole, recent, 10, 0.1, 0.25), check_exact=True
        )


def test_metrics_against_baselines_are_recorded(ml_db):
    conn, summary = ml_db
    arrears = summary["models"]["arrears_warning"]["metrics"]
    assert {"auc", "ks", "gini", "brier", "baseline_persistence_auc"} <= set(arrears)
    theft = summary["models"]["theft_suspicion"]["metrics"]
    assert theft["precision_at_capacity"] <= theft["precision_at_capacity_ceiling"] + 1e-12
    forecast = summary["models"]["consumption_forecast"]["metrics"]
    assert forecast["mae_ratio"] < 1  # the global model beats seasonal naive on the synthetic panel
    assert {"mase", "wape", "seasonal_naive_wape"} <= set(forecast)
    assert {"auc", "ks", "gini", "brier"} <= set(summary["models"]["credit_score"]["metrics"])
    with psycopg.connect(conn.url) as pg:
        # every run records its version, window and parameters; classifiers their calibration by decile
        runs = pg.execute(
            "select model_name, model_version, train_window_first_month, train_window_last_month, parameters"
            " from ml.model_runs"
        ).fetchall()
        assert len(runs) == 4 and all(all(v is not None for v in run) for run in runs)
        deciles = dict(
            pg.execute(
                "select runs.model_name, count(*) from ml.model_metrics_by_decile as deciles"
                " inner join ml.model_runs as runs using (run_id) group by 1"
            ).fetchall()
        )
        assert all(deciles.get(m, 0) > 0 for m in ("credit_score", "arrears_warning", "theft_suspicion"))


def test_reasons_and_monitoring_are_data(ml_db):
    conn, _ = ml_db
    with psycopg.connect(conn.url) as pg:
        worst = pg.execute(
            "select score, reason_1, reason_codes from ml.credit_scores order by score, customer_id limit 1"
        ).fetchone()
        assert worst[1] and "points" in worst[1] and worst[2]
        warned = pg.execute(
            "select count(*), count(reason_1) from ml.arrears_warnings where warning_level <> 'none'"
        ).fetchone()
        assert warned[0] > 0 and warned[1] > 0
        psi = pg.execute(
            "select variable_kind, count(*), bool_and(flag in ('stable', 'investigate', 'act')) "
            "from ml.monitoring_psi group by 1 order by 1"
        ).fetchall()
        assert [r[0] for r in psi] == ["feature", "score"] and all(r[2] for r in psi)
        by_grade = pg.execute(
            "select grade_type, count(*), bool_and(bad_rate is null or bad_rate between 0 and 1)"
            " from ml.monitoring_grade_bad_rate group by 1 order by 1"
        ).fetchall()
        assert [r[0] for r in by_grade] == ["final", "model"] and all(r[2] for r in by_grade)
        assert pg.execute("select count(*) from ml.model_metrics_by_decile").fetchone()[0] > 0
        assert (
            pg.execute(
                "select count(*) from ml.arrears_warnings_by_segment where segment_type = 'industry'"
            ).fetchone()[0]
            > 0
        )


def test_grade_bad_rates_equal_sql_over_mature_and_immature_months(ml_db, fast_cfg):
    """The observed bad rate per grade, recomputed in SQL from the scores and the label mart, on a
    copy rescored over all 27 months (the fixture's 12 scored months are all too recent for the
    12-month label): a mature month counts the bads among its scored customers, a month whose label
    window has not passed only its customers (the monitoring reads no label for it)."""
    import copy

    conn, _ = ml_db
    clone = clone_database(conn)
    try:
        cfg = copy.deepcopy(fast_cfg)
        cfg["discipline"]["backfill_months"] = 27
        score_all(clone, cfg=cfg, models=["credit_score"], rescore=True)
        with psycopg.connect(clone.url) as pg:
            recomputed = pg.execute(
                """
                with scores as (
                    select customer_id, as_of_month, 'model' as grade_type, model_grade as grade from ml.credit_scores
                    union all
                    select customer_id, as_of_month, 'final', final_grade from ml.credit_scores
                ),
                mature as (
                    select (max(as_of_month) - interval '12 months')::date as until
                    from marts_ml.fct_customer_month_features
                )
                select scores.as_of_month, scores.grade_type, scores.grade, count(*),
                    case when scores.as_of_month <= mature.until
                        then sum(case when labels.is_bad_within_12_months then 1 else 0 end) end
                from scores
                cross join mature
                left join marts_ml.fct_customer_month_labels as labels
                    on labels.customer_id = scores.customer_id and labels.as_of_month = scores.as_of_month
                group by 1, 2, 3, mature.until
                order by 1, 2, 3
                """
            ).fetchall()
            stored = pg.execute(
                "select as_of_month, grade_type, grade, customers, bads"
                " from ml.monitoring_grade_bad_rate order by 1, 2, 3"
            ).fetchall()
            assert stored == recomputed
            assert any(bads is None for *_, bads in stored) and any(bads for *_, bads in stored)
    finally:
        drop_database(clone)


def test_rerun_with_the_same_inputs_rewrites_identical_rows(ml_db, fast_cfg):
    conn, _ = ml_db
    before = checksums(conn)
    again = score_all(conn, cfg=fast_cfg, rescore=True)
    assert all(not o["trained"] for o in again["models"].values())  # same run key: stored model reused
    assert all(o["rows"] for o in again["models"].values())  # ... and every month rewritten
    assert checksums(conn) == before
    with psycopg.connect(conn.url) as pg:
        attempts = pg.execute("select count(*) from ml.model_run_attempts").fetchone()[0]
    assert attempts >= 8  # every attempt logged


def prediction_checksums(conn) -> dict:
    """md5 of every prediction table's rows in key order, without the wall-clock `scored_at`."""
    from gridcredit.ml.schema import TABLES

    out = {}
    with psycopg.connect(conn.url) as pg:
        for name in ML_TABLES:
            table = TABLES[name]
            columns = ", ".join(c for c in table.column_names if c != "scored_at")
            order = ", ".join(table.primary_key)
            out[name] = pg.execute(
                f"select count(*), md5(coalesce(string_agg(row({columns})::text, '|' order by {order}), '')) "
                f"from ml.{name}"
            ).fetchone()
    return out


@contextlib.contextmanager
def marts_database(session_warehouse: warehouse.Connection):
    """A new database holding the module's synthetic marts (same seed), no ML outputs; dropped after."""
    name = f"t_ml_{uuid.uuid4().hex[:10]}"
    admin = session_warehouse.with_dbname("postgres")
    with psycopg.connect(admin.url, autocommit=True) as pg:
        pg.execute(f'create database "{name}"')
    try:
        conn = session_warehouse.with_dbname(name)
        features, labels = make_marts(customers=300, months=27, seed=11)
        with psycopg.connect(conn.url) as pg:
            write_marts(pg, features, labels)
        yield conn
    finally:
        with psycopg.connect(admin.url, autocommit=True) as pg:
            pg.execute(f'drop database if exists "{name}" with (force)')


def test_training_again_from_scratch_writes_identical_scores(ml_db, fast_cfg, session_warehouse):
    """Fixed seeds: the same marts in a new database, trained from nothing (no stored model to
    reuse), give the same run ids, versions and scores row for row. Runs before the tests below
    change the module database's outputs."""
    conn, _ = ml_db
    with marts_database(session_warehouse) as again:
        summary = score_all(again, cfg=fast_cfg)
        assert all(o["trained"] for o in summary["models"].values())
        first = prediction_checksums(conn)
        assert all(rows > 0 for rows, _ in first.values())
        assert prediction_checksums(again) == first


def test_inside_the_cadence_a_new_month_is_scored_by_the_current_version_and_a_change_retrains(ml_db, fast_cfg):
    """ADR 0035: between retrains nothing is trained, evaluated or gated; only the month without
    published rows is scored, by the current version, and the attempt says why. A configuration
    change (fingerprint) trains a new version at once."""
    conn, _ = ml_db
    with psycopg.connect(conn.url) as pg:
        current = pg.execute(
            "select run_id from ml.model_runs where model_name = 'credit_score' and is_current"
        ).fetchone()[0]
        runs_before = pg.execute("select count(*) from ml.model_runs").fetchone()[0]
        latest = pg.execute("select max(as_of_month) from ml.credit_scores").fetchone()[0]
        kept = pg.execute("select count(*) from ml.credit_scores where as_of_month = %s", [latest]).fetchone()[0]
        pg.execute("delete from ml.credit_scores where as_of_month = %s", [latest])  # as when a new month arrives
        pg.commit()
    summary = score_all(conn, cfg=fast_cfg, models=["credit_score"])
    outcome = summary["models"]["credit_score"]
    assert outcome["status"] == "reused" and not outcome["trained"], outcome["reason"]
    assert "reused the current version" in outcome["reason"]
    assert outcome["scoring_run_id"] == current
    assert outcome["months_scored"] == [f"{latest:%Y-%m}"]
    assert not {"plan_s", "fit_s", "evaluate_s", "gate_s"} & set(outcome["timings"])
    with psycopg.connect(conn.url) as pg:
        assert pg.execute("select count(*) from ml.model_runs").fetchone()[0] == runs_before
        assert pg.execute(
            "select count(*), min(run_id), max(run_id) from ml.credit_scores where as_of_month = %s", [latest]
        ).fetchone() == (kept, current, current)
        assert (
            pg.execute(
                "select count(*) from ml.monitoring_psi where model_name = 'credit_score' and as_of_month = %s",
                [latest],
            ).fetchone()[0]
            == 1
        )
        attempt = pg.execute(
            "select outcome, run_id, message from ml.model_run_attempts where model_name = 'credit_score'"
            " order by attempt_id desc limit 1"
        ).fetchone()
        assert attempt[:2] == ("reused", current) and "reused" in attempt[2]

    changed = deep_merge(fast_cfg, {"credit_score": {"top_reasons": 2}})
    summary = score_all(conn, cfg=changed, models=["credit_score"])
    outcome = summary["models"]["credit_score"]
    assert outcome["trained"] and outcome["status"] in ("promoted", "rejected")
    assert "configuration changed" in outcome["retrain_reason"]
    with psycopg.connect(conn.url) as pg:
        assert pg.execute("select count(*) from ml.model_runs").fetchone()[0] == runs_before + 1
    # `--retrain`: trained again although nothing changed (same run key: the stored model is reused)
    summary = score_all(conn, cfg=changed, models=["credit_score"], retrain=True)
    outcome = summary["models"]["credit_score"]
    assert outcome["status"] != "reused" and outcome["retrain_reason"] == "retrain requested (--retrain)"


def test_drift_past_act_takes_back_the_reused_versions_staged_rows_and_retrains(session_warehouse, fast_cfg):
    """The score stage stages each batch as soon as it is scored (ADR 0101), before the reused
    version's drift check on the new month. When the check fails, a new version is trained and
    scores the month again: what the reused version staged must be taken back (staging the same
    keys twice would fail on the staged table's primary key, or publish the wrong version)."""
    with marts_database(session_warehouse) as conn:
        score_all(conn, cfg=fast_cfg, models=["credit_score"])
        with psycopg.connect(conn.url) as pg:
            latest = pg.execute("select max(as_of_month) from ml.credit_scores").fetchone()[0]
            kept = pg.execute("select count(*) from ml.credit_scores where as_of_month = %s", [latest]).fetchone()[0]
            pg.execute("delete from ml.credit_scores where as_of_month = %s", [latest])  # a new month arrives ...
            pg.execute(  # ... in which every customer pays far worse than before: the score distribution moves
                "update marts_ml.fct_customer_month_features set on_time_payment_rate_12m = 0,"
                " months_in_arrears_12m = 12, max_days_past_due_12m = 400, days_past_due = 400,"
                " is_in_arrears = true where as_of_month = %s",
                [latest],
            )
            pg.commit()
        summary = score_all(conn, cfg=fast_cfg, models=["credit_score"])
        outcome = summary["models"]["credit_score"]
        assert "passed the act threshold" in outcome["retrain_reason"], outcome["retrain_reason"]
        assert outcome["status"] != "reused" and outcome["months_scored"] == [f"{latest:%Y-%m}"]
        assert outcome["rows"]["credit_scores"] == kept
        with psycopg.connect(conn.url) as pg:
            assert pg.execute(
                "select count(*), count(distinct run_id) from ml.credit_scores where as_of_month = %s", [latest]
            ).fetchone() == (kept, 1)
            assert (
                pg.execute(
                    "select count(*) from pg_tables where schemaname = 'ml__build' and tablename like '%staged'"
                ).fetchone()[0]
                == 0
            )


def test_discarded_staged_rows_are_not_applied(ml_db):
    conn, _ = ml_db
    with psycopg.connect(conn.url) as pg:
        build = BuildArea(pg)
        build.reset()
        published = pg.execute("select count(*) from ml.credit_scores").fetchone()[0]
        rows = pg.execute("select * from ml.credit_scores limit 5").fetchall()
        names = [d.name for d in pg.execute("select * from ml.credit_scores limit 0").description]
        pg.commit()
        build.stage("credit_scores", pd.DataFrame(rows, columns=names), Scope.everything())  # would keep 5 rows
        build.discard(["credit_scores"])
        build.prepare()
        assert pg.execute("select count(*) from ml__build.credit_scores").fetchone()[0] == published > 5


def test_gate_keeps_the_current_model_when_the_new_one_is_worse(ml_db, fast_cfg):
    conn, _ = ml_db
    with psycopg.connect(conn.url) as pg:
        current = pg.execute(
            "select run_id from ml.model_runs where model_name = 'arrears_warning' and is_current"
        ).fetchone()[0]
        pg.execute(
            "delete from ml.arrears_warnings where as_of_month = (select max(as_of_month) from ml.arrears_warnings)"
        )  # a month without published rows, as when new data arrives
        pg.commit()
    crippled = deep_merge(
        fast_cfg, {"arrears_warning": {"gbm": {"max_iter": 1, "max_leaf_nodes": 2, "learning_rate": 0.001}}}
    )
    summary = score_all(conn, cfg=crippled, models=["arrears_warning"])
    outcome = summary["models"]["arrears_warning"]
    assert outcome["status"] == "rejected"
    assert "kept the current version" in outcome["reason"]
    assert outcome["scoring_run_id"] == current
    with psycopg.connect(conn.url) as pg:
        assert (
            pg.execute(
                "select run_id from ml.model_runs where model_name = 'arrears_warning' and is_current"
            ).fetchone()[0]
            == current
        )
        rejected = pg.execute(
            "select status, status_reason, is_current from ml.model_runs where run_id = %s", [outcome["run_id"]]
        ).fetchone()
        assert rejected[0] == "rejected" and not rejected[2]
        latest = pg.execute(
            "select distinct run_id from ml.arrears_warnings where as_of_month = "
            "(select max(as_of_month) from ml.arrears_warnings)"
        ).fetchall()
        assert latest == [(current,)]  # the new month was scored by the version that stayed


def test_theft_falls_back_to_the_anomaly_score_without_enough_labels(ml_db, fast_cfg):
    conn, _ = ml_db
    no_labels = deep_merge(fast_cfg, {"discipline": {"min_positives": 10**9}})
    summary = score_all(conn, cfg=no_labels, models=["theft_suspicion"])
    outcome = summary["models"]["theft_suspicion"]
    assert outcome["metrics"]["mode"] == "anomaly"
    assert outcome["status"] in ("promoted", "rejected")


def test_failure_before_the_switch_leaves_published_outputs_intact(ml_db):
    conn, _ = ml_db
    before = checksums(conn)
    with psycopg.connect(conn.url) as pg:
        build = BuildArea(pg)
        build.reset()
        with psycopg.connect(conn.url) as reader:
            rows = reader.execute("select * from ml.credit_scores limit 5").fetchall()
            names = [d.name for d in reader.execute("select * from ml.credit_scores limit 0").description]
        frame = pd.DataFrame(rows, columns=names).assign(score=0, final_grade="C")
        build.stage("credit_scores", frame, Scope.everything())  # staged: would replace every row
        # The run fails here, before publish(): the connection closes, nothing is switched.
    assert checksums(conn) == before


def test_prepared_build_tables_are_analyzed(ml_db):
    """The after-scoring dbt build reads ml__build right after the ML step: its statistics must
    already count the new rows (without them a new month was estimated at one row; session 9)."""
    conn, _ = ml_db
    with psycopg.connect(conn.url) as pg:
        build = BuildArea(pg)
        build.reset()
        rows = pg.execute("select * from ml.credit_scores limit 5").fetchall()
        names = [d.name for d in pg.execute("select * from ml.credit_scores limit 0").description]
        pg.commit()
        build.stage("credit_scores", pd.DataFrame(rows, columns=names), Scope.everything())
        build.prepare()
    with psycopg.connect(conn.url) as pg:
        reltuples = pg.execute("select reltuples from pg_class where oid = 'ml__build.credit_scores'::regclass")
        assert reltuples.fetchone()[0] == 5
        build = BuildArea(pg)
        build.reset()  # the build area equals the published one again for the tests after this one


def test_the_build_area_is_copied_only_when_it_may_differ_and_publish_compares_only_logged_keys(ml_db, fast_cfg):
    """ADR 0111: a statement trigger on every ml and ml__build table records any write outside the
    write-back; the reset then copies, otherwise it keeps the build area or takes a prepared run back by
    its logged keys; publish compares only the logged keys."""
    conn, _ = ml_db
    with psycopg.connect(conn.url) as pg:
        build = BuildArea(pg)
        build.reset()
        assert build.reset() == "kept"  # nothing happened in between
        customer, month = pg.execute(
            "select customer_id, max(as_of_month) from ml.credit_scores group by 1 order by 1 limit 1"
        ).fetchone()
        original = pg.execute(
            "select reason_1 from ml.credit_scores where customer_id = %s and as_of_month = %s", [customer, month]
        ).fetchone()[0]
        # An operator's fix in a published table is seen, copied into the build area, and survives a run.
        pg.execute(
            "update ml.credit_scores set reason_1 = 'fixed by hand' where customer_id = %s and as_of_month = %s",
            [customer, month],
        )
        pg.commit()
        assert build.reset() == "copied"
        assert checksums(conn, "ml__build") == checksums(conn)
        # A write to a build table outside the write-back, likewise.
        pg.execute("update ml__build.arrears_warnings set reason_1 = 'stray' where as_of_month = %s", [month])
        pg.commit()
        assert build.reset() == "copied"
        assert checksums(conn, "ml__build") == checksums(conn)
        # A table whose trigger is gone: the state cannot be trusted.
        pg.execute("drop trigger gridcredit_ml_sync on ml.theft_suspicion")
        pg.execute("update ml.theft_suspicion set reason_1 = reason_1 || '' where as_of_month = %s", [month])
        pg.commit()
        assert build.reset() == "copied"
        assert (
            pg.execute(
                "select count(*) from pg_trigger where tgname = 'gridcredit_ml_sync'"
                " and tgrelid = 'ml.theft_suspicion'::regclass"
            ).fetchone()[0]
            == 1
        )
        # A prepared run that is never published is taken back by its logged keys.
        published = pg.execute("select * from ml.credit_scores where as_of_month = %s order by customer_id", [month])
        names = [d.name for d in published.description]
        month_rows = pd.DataFrame(published.fetchall(), columns=names)
        pg.commit()
        half = month_rows.iloc[: len(month_rows) // 2].assign(reason_1="restaged")
        build.stage("credit_scores", half, Scope.equals(as_of_month=month))  # replaces the month by half its rows
        build.prepare()
        assert checksums(conn, "ml__build")["credit_scores"] != checksums(conn)["credit_scores"]
        assert build.reset() == "undone"
        assert checksums(conn, "ml__build") == checksums(conn)
        # Published: ml takes the changed rows and loses the rows the scope removed, and nothing else.
        before = checksums(conn)
        build.stage("credit_scores", half, Scope.equals(as_of_month=month))
        inserted = build.publish()
        assert inserted["credit_scores"] == len(half) and inserted["arrears_warnings"] == 0
        assert pg.execute(
            "select count(*), count(*) filter (where reason_1 = 'restaged') from ml.credit_scores"
            " where as_of_month = %s",
            [month],
        ).fetchone() == (len(half), len(half))
        assert checksums(conn, "ml__build") == checksums(conn)
        assert {k: v for k, v in checksums(conn).items() if k != "credit_scores"} == {
            k: v for k, v in before.items() if k != "credit_scores"
        }
        assert build.reset() == "kept"
        build.stage("credit_scores", month_rows, Scope.equals(as_of_month=month))  # back as it was
        build.publish()
        assert checksums(conn) == before
    summary = score_all(conn, cfg=fast_cfg)  # a run with nothing new: the hand fix stays
    assert summary["build_area_reset"] == "kept"
    with psycopg.connect(conn.url) as pg:
        assert (
            pg.execute(
                "select reason_1 from ml.credit_scores where customer_id = %s and as_of_month = %s", [customer, month]
            ).fetchone()[0]
            == "fixed by hand"
        )
        pg.execute(
            "update ml.credit_scores set reason_1 = %s where customer_id = %s and as_of_month = %s",
            [original, customer, month],
        )
        pg.commit()


def test_kill_during_the_switch_leaves_published_outputs_intact(ml_db, tmp_path):
    """SIGKILL inside the switch transaction (after credit_scores was replaced): nothing changes;
    the next run cleans the build area and publishes normally."""
    conn, _ = ml_db
    before = checksums(conn)
    changed = yaml.safe_load(CONFIG_PATH.read_text())
    changed = deep_merge(changed, FAST)
    changed["credit_score"]["base_points"] = 60  # every score moves: a published change would show
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(changed))
    env = dict(
        os.environ,
        WAREHOUSE_URL=conn.url,
        GRIDCREDIT_ML_CONFIG=str(config),
        GRIDCREDIT_KILL_AT="ml:publish:credit_scores",
    )
    code = (
        "from gridcredit import warehouse; from gridcredit.ml.scoring import score_all; "
        "score_all(warehouse.current(), models=['credit_score'], rescore=True)"
    )
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == -9, result.stderr[-2000:]
    assert checksums(conn) == before
    with psycopg.connect(conn.url) as pg:
        assert pg.execute("select count(*) from pg_namespace where nspname = 'ml__build'").fetchone()[0] == 1
    # A clean rerun: the build area is reset and the new scores are published in one go.
    rerun = subprocess.run(
        [sys.executable, "-c", code],
        env={k: v for k, v in env.items() if k != "GRIDCREDIT_KILL_AT"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    after = checksums(conn)
    assert after["credit_scores"] != before["credit_scores"]
    assert after["arrears_warnings"] == before["arrears_warnings"]
    with psycopg.connect(conn.url) as pg:
        # The build area stays (dbt staging views of `gridcredit run` read it) and equals `ml`.
        assert checksums(conn, "ml__build") == after
        staged = "select count(*) from pg_tables where schemaname = 'ml__build' and tablename like '%%\\_\\_staged'"
        assert pg.execute(staged).fetchone()[0] == 0


def test_score_cli_is_mountable():
    import typer
    from typer.testing import CliRunner

    from gridcredit.ml.cli import app as ml_app

    root = typer.Typer()

    @root.callback()
    def _root() -> None:
        """root"""

    root.add_typer(ml_app)
    result = CliRunner().invoke(root, ["--help"])
    assert result.exit_code == 0
    assert "score" in result.output and "validate" in result.output


def test_config_file_is_the_documented_one():
    assert Path(CONFIG_PATH).name == "config.yaml" and Path(CONFIG_PATH).parent.name == "ml"


def test_empty_feature_mart_skips_every_model_and_creates_the_tables(fresh_database, fast_cfg):
    features, labels = make_marts(customers=5, months=2, seed=1)
    with psycopg.connect(fresh_database.url) as pg:
        write_marts(pg, features.head(0), labels.head(0))
    summary = score_all(fresh_database, cfg=fast_cfg)
    assert {o["status"] for o in summary["models"].values()} == {"skipped"}
    with psycopg.connect(fresh_database.url) as pg:
        ml_tables = "select count(*) from information_schema.tables where table_schema = 'ml'"
        assert pg.execute(ml_tables).fetchone()[0] >= 14


def test_standalone_score_command_works_as_the_ml_role(ml_db, tmp_path):
    """`gridcredit score` on its own narrows itself to access.ml_role as the pipeline's score stage
    does (ADR 0080): its attempts are recorded as gridcredit_ml. With the role emptied
    (GRIDCREDIT_ML_ROLE=''), the same command records the login role: the check tells them apart."""
    from conftest import GRIDCREDIT_BIN

    from gridcredit import access

    conn, _ = ml_db
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(deep_merge(yaml.safe_load(CONFIG_PATH.read_text()), FAST)))
    env = dict(os.environ, WAREHOUSE_URL=conn.url, GRIDCREDIT_ML_CONFIG=str(config))

    def attempt_roles(role_override: dict) -> list[str]:
        with psycopg.connect(conn.url) as pg:
            last = pg.execute("select coalesce(max(attempt_id), 0) from ml.model_run_attempts").fetchone()[0]
        result = subprocess.run(
            [GRIDCREDIT_BIN, "score", "--models", "credit_score"],
            env={**env, **role_override},
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        with psycopg.connect(conn.url) as pg:
            rows = pg.execute("select database_user from ml.model_run_attempts where attempt_id > %s", [last])
            return [role for (role,) in rows.fetchall()]

    assert attempt_roles({"GRIDCREDIT_ML_ROLE": ""}) == [conn.user]
    assert attempt_roles({}) == [access.ML]
