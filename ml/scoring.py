"""`gridcredit score`: train (or reuse), gate, score, monitor and publish every model in one go.

For each model: decide whether a new version is due (retrain cadence, fingerprints, ``--retrain``;
ADR 0035). If not, score the as-of months without published rows with the current version
(status ``reused``; a score PSI past the "act" threshold trains after all). Otherwise plan an
out-of-time split on the feature mart, derive the run key (model +
training window + fingerprint of data, code and configuration), reuse the stored model of an
identical promoted run or train a new one, evaluate it on the test months, compare it with the
current version on the same rows (promotion gate), and score the as-of months that have no
published rows yet (the last ``backfill_months`` on the first run) with whichever version is
current. Everything is staged in ``ml__build`` and published by one atomic switch.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from psycopg import sql
from rich.console import Console
from rich.table import Table
from threadpoolctl import threadpool_limits

from gridcredit import warehouse
from gridcredit.ml import arrears, consumption, credit, theft
from gridcredit.ml import metrics as M
from gridcredit.ml.config import MODEL_NAMES, RETRAIN_KEY, SCORE_BATCH_KEY, config_fingerprint, load_config
from gridcredit.ml.features import (
    MONTH_INDEX,
    Dataset,
    iter_sql_chunks,
    month_from_index,
    month_index,
    open_dataset,
    read_sql_frame,
    table_exists,
)
from gridcredit.ml.modelling import Plan, month_rows, run_identity
from gridcredit.ml.monitoring import grade_bad_rate, psi_month_over_month
from gridcredit.ml.registry import (
    GateDecision,
    close_interrupted_attempts,
    code_fingerprint,
    current_run,
    dump_artifact,
    finish_attempt,
    get_run,
    last_trained_run,
    load_artifact,
    promotion_decision,
    retrain_decision,
    start_attempt,
)
from gridcredit.ml.schema import ensure_schema
from gridcredit.ml.splits import InsufficientHistory
from gridcredit.ml.writeback import BuildArea, Scope

MODULES = {
    "credit_score": credit,
    "arrears_warning": arrears,
    "theft_suspicion": theft,
    "consumption_forecast": consumption,
}
SCORE_COLUMNS = {name: module.SCORE_COLUMN for name, module in MODULES.items()}


@dataclass
class ModelOutcome:
    model_name: str
    status: str  # promoted | rejected | skipped | reused (no training: the current version scored)
    reason: str
    retrain_reason: str | None = None  # why this run trained (or, when reused, why it did not)
    run_id: str | None = None
    model_version: str | None = None
    scoring_run_id: str | None = None
    scoring_model_version: str | None = None
    trained: bool = False
    months_scored: list[str] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)


# -- truth (simulated data only) -----------------------------------------------------------------
def discover_truth_dir(pg) -> Path | None:
    """``<extract>/truth`` of the latest loaded extract, when the simulator wrote one."""
    if not table_exists(pg, "ops.load_ledger"):
        return None
    row = pg.execute(
        "select file_path from ops.load_ledger where status = 'loaded' order by load_id desc limit 1"
    ).fetchone()
    pg.commit()
    if not row or not row[0]:
        return None
    candidate = Path(row[0]).parent.parent / "truth"
    return candidate if (candidate / "customer_months.csv").exists() else None


def load_truth(truth_dir: Path | None, months=None) -> pd.DataFrame | None:
    """Simulator truth per customer-month: ``customer_id, m, financial_health, theft_active``.

    ``months``: only these month indexes (the file is read in chunks, so the whole history of
    customer-months is never held: ADR 0097).
    """
    if truth_dir is None:
        return None
    path = Path(truth_dir) / "customer_months.csv"
    if not path.exists():
        return None
    wanted = None if months is None else {int(m) for m in months}
    parts = []
    with pd.read_csv(path, dtype={"customer_id": str, "month": str}, chunksize=500_000) as reader:
        for frame in reader:
            m = month_index(pd.to_datetime(frame["month"] + "-01"))
            keep = np.ones(len(frame), dtype=bool) if wanted is None else np.isin(m, list(wanted))
            frame = frame.loc[keep].reset_index(drop=True)
            out = pd.DataFrame({"customer_id": frame["customer_id"], "m": m[keep]})
            if "financial_health" in frame:
                out["financial_health"] = frame["financial_health"].astype(float)
            for col in ("theft_active", "is_thief"):
                if col in frame:
                    out[col] = frame[col].astype(str).str.lower().isin(["true", "t", "1"]).astype(float)
            parts.append(out)
    return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]


def truth_health_auc(ds: Dataset, rows: np.ndarray, label: str, truth: pd.DataFrame | None) -> float | None:
    """AUC of the simulator's latent financial health (lower = riskier) for the label: a reference."""
    if truth is None or "financial_health" not in truth:
        return None
    part = ds.frame.iloc[rows]
    keyed = pd.DataFrame(
        {
            "customer_id": part[ds.customer_col].to_numpy(),
            "m": part[MONTH_INDEX].to_numpy(),
            "y": part[label].to_numpy(dtype=float),
        }
    )
    merged = keyed.merge(truth[["customer_id", "m", "financial_health"]], on=["customer_id", "m"], how="left")
    return M.auc(merged["y"], -merged["financial_health"])


# -- per model -------------------------------------------------------------------------------------
class _Context:
    def __init__(
        self,
        pg,
        log,
        build: BuildArea,
        ds: Dataset,
        cfg: dict,
        code_fp: str,
        config_fp: str,
        truth_dir: Path | None,
        rescore: bool,
        started_at: datetime,
        retrain: bool = False,
    ):
        self.pg, self.log, self.build, self.ds, self.cfg = pg, log, build, ds, cfg
        self.code_fp, self.config_fp, self.truth_dir = code_fp, config_fp, truth_dir
        self._truth: tuple[tuple[int, ...], pd.DataFrame | None] | None = None
        self.rescore, self.started_at, self.retrain = rescore, started_at, retrain
        self.long: pd.DataFrame | None = None
        self.new_rows: dict[str, pd.DataFrame] = {}

    def truth(self, months) -> pd.DataFrame | None:
        """The simulator's truth of ``months``, read on first use: only evaluating a trained model
        needs it, on its test months (the last months asked for are kept: a champion is evaluated
        on the same months)."""
        if self.truth_dir is None:
            return None
        key = tuple(sorted(int(m) for m in months))
        if self._truth is None or self._truth[0] != key:
            self._truth = None  # free the previous months first
            truth = load_truth(self.truth_dir, key)
            if truth is None:
                self.truth_dir = None
                return None
            self._truth = (key, truth)
        return self._truth[1]


def _plan(name: str, ctx: _Context) -> Plan:
    if name == "consumption_forecast":
        ctx.long = consumption.consumption_frame(ctx.ds, ctx.pg, ctx.cfg)
        return consumption.plan(ctx.ds, ctx.cfg, ctx.long)
    return MODULES[name].plan(ctx.ds, ctx.cfg)


def _fit(name: str, ctx: _Context, plan: Plan):
    ds = plan.data or ctx.ds  # the plan's rows index its own dataset (only the planned rows, ADR 0097)
    if name == "consumption_forecast":
        return consumption.fit(ds, plan, ctx.cfg, ctx.long)
    return MODULES[name].fit(ds, plan, ctx.cfg)


def _evaluate(name: str, ctx: _Context, model, plan: Plan) -> tuple[dict, pd.DataFrame]:
    ds = plan.data or ctx.ds
    if name == "consumption_forecast":
        return consumption.evaluate(model, ds, plan, ctx.cfg, ctx.long)
    if name == "theft_suspicion":
        return theft.evaluate(model, ds, plan, ctx.cfg, ctx.truth(plan.split.test))
    metrics, deciles = MODULES[name].evaluate(model, ds, plan, ctx.cfg)
    health = truth_health_auc(ds, plan.test_rows, plan.label_column, ctx.truth(plan.split.test))
    if health is not None:
        metrics["truth_financial_health_auc"] = health
    return metrics, deciles


def score_batches(ds: Dataset, months, max_rows: int) -> list[list[int]]:
    """Consecutive as-of months grouped so a batch holds at most ``max_rows`` rows (at least one month)."""
    counts = ds.month_row_counts()
    batches: list[list[int]] = []
    rows = 0
    for m in sorted(int(x) for x in months):
        n = int(counts.get(m, 0))
        if batches and rows + n <= max_rows:
            batches[-1].append(m)
            rows += n
        else:
            batches.append([m])
            rows = n
    return batches


def _scored_batches(name: str, ctx: _Context, model, months, max_rows: int | None = None):
    """Score ``months`` in batches of whole as-of months (``discipline.score_batch_rows``; ADR 0036).

    Yields ``(batch, outputs, notes)`` per batch. Every per-customer output depends only on its
    own month's rows (ranks, capacity levels and percentiles are per month; segment and environment
    warnings and forecasts per month), so scoring month by month gives the same rows as one call
    over all months while the working set (feature matrix, occlusion contributions, reasons,
    forecasts) is one batch's customers instead of the whole backfill's.
    tests/test_ml_pipeline.py checks the equality.
    """
    module = MODULES[name]
    if max_rows is None:
        max_rows = int(ctx.cfg["discipline"].get(SCORE_BATCH_KEY, 100_000))
    known = pd.Series(dtype=float)  # arrears: mean probability of the months already scored
    # The forecast reads kWh of the long frame in every batch: index it once.
    lookup = consumption.KwhLookup(ctx.long) if name == "consumption_forecast" and ctx.long is not None else None
    for batch in score_batches(ctx.ds, months, max_rows):
        ds = _batch_window(name, ctx.ds, batch, known)
        if name == "arrears_warning":
            outputs, notes = module.score(model, ds, batch, ctx.cfg, known_means=known)
            scored = outputs[module.OUTPUT_TABLE]
            known = pd.concat([known, scored.groupby(MONTH_INDEX)["probability"].mean()])
        elif name == "consumption_forecast":
            outputs, notes = module.score(model, ds, batch, ctx.cfg, ctx.long, lookup)
        else:
            outputs, notes = module.score(model, ds, batch, ctx.cfg)
        del ds
        yield batch, outputs, notes


def _score(
    name: str, ctx: _Context, model, months, max_rows: int | None = None
) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """Every batch's outputs of :func:`_scored_batches` in one frame per table (for comparisons:
    the score stage itself stages each batch as it comes, :func:`_score_and_stage`)."""
    parts: dict[str, list[pd.DataFrame]] = {}
    notes: list[str] = []
    for _, outputs, batch_notes in _scored_batches(name, ctx, model, months, max_rows):
        for table, frame in outputs.items():
            parts.setdefault(table, []).append(frame)
        notes.extend(n for n in batch_notes if n not in notes)
    merged = {}
    for table, frames in parts.items():
        kept = [f for f in frames if f is not None and len(f)]
        merged[table] = pd.concat(kept, ignore_index=True) if kept else frames[0]
    return merged, notes


def _score_and_stage(
    name: str, ctx: _Context, model, months, scoring_run: str, scoring_version: str, outcome: ModelOutcome, lap
) -> list[str]:
    """Score ``months`` batch by batch and stage each batch's rows as soon as it is scored.

    The process holds one batch's outputs at a time, not the whole backfill's: at 100k customers
    the forecast's 4.05 M rows, concatenated before staging, were the score stage's memory peak
    (docs/decisions/0101-stage-scores-batch-by-batch.md). Rows get the scoring run, version and
    the first time their month was scored by that run (a rerun keeps it). Only the columns that
    monitoring reads are kept for the rest of the run (``ctx.new_rows``). Returns the notes.
    """
    module = MODULES[name]
    kept = _scored_at(ctx, module.OUTPUT_TABLE, scoring_run, ctx.ds.month_dates(months))
    monitored: dict[str, list[pd.DataFrame]] = {}
    notes: list[str] = []
    for batch, outputs, batch_notes in _scored_batches(name, ctx, model, months):
        lap("score_s")
        notes.extend(n for n in batch_notes if n not in notes)
        scope = Scope.equals(as_of_month=ctx.ds.month_dates(batch))
        for table, frame in outputs.items():
            if frame is None:
                continue
            frame = frame.copy(deep=False)  # copy-on-write: the new columns do not touch the scored frame
            frame["run_id"] = scoring_run
            frame["model_version"] = scoring_version
            frame["scored_at"] = [kept.get(d, ctx.started_at) for d in frame["as_of_month"]] if len(frame) else []
            outcome.rows[table] = outcome.rows.get(table, 0) + ctx.build.stage(table, frame, scope)
            monitored.setdefault(table, []).append(_monitored_columns(table, frame))
        outputs = frame = None  # free this batch before the next is scored
        lap("stage_s")
    for table, frames in monitored.items():
        ctx.new_rows[table] = pd.concat(frames, ignore_index=True)
    outcome.months_scored = [f"{d:%Y-%m}" for d in ctx.ds.month_dates(months)]
    return notes


def _batch_window(name: str, ds: Dataset, batch: list[int], known: pd.Series) -> Dataset:
    """The months a model's ``score`` reads for one batch (the dataset itself when it is whole).

    The arrears environment level compares each month with the 3 before it; those not scored in
    an earlier batch are predicted again, so they are read too. The forecast reads kWh from the
    long frame and only keys and segments of the batch here.
    """
    months = set(batch)
    if name == "arrears_warning":
        have = set(ds.months)
        months |= {m - k for m in batch for k in (1, 2, 3) if m - k in have and m - k not in known.index}
    if name == "consumption_forecast":
        return ds.window(sorted(months), list(ds.segments.values()))
    return ds.window(sorted(months))


def _published_months(pg, table: str) -> set[int]:
    rows = pg.execute(sql.SQL("select distinct as_of_month from ml.{}").format(sql.Identifier(table))).fetchall()
    pg.commit()
    return {int(month_index([r[0]])[0]) for r in rows}


def _months_to_score(name: str, ctx: _Context) -> list[int]:
    backfill = int(ctx.cfg["discipline"]["backfill_months"])
    months = ctx.ds.months
    if name == "consumption_forecast" and ctx.long is not None:
        months = sorted(set(months) & set(ctx.long["m"].unique().tolist()))
    window = months[-backfill:]
    if ctx.rescore:
        return window
    published = _published_months(ctx.pg, MODULES[name].OUTPUT_TABLE)
    return [m for m in window if m not in published]


def _scored_at(ctx: _Context, table: str, run_id: str, dates: list) -> dict:
    rows = ctx.pg.execute(
        sql.SQL(
            "select as_of_month, min(scored_at) from ml.{} where run_id = %s and as_of_month = any(%s) group by 1"
        ).format(sql.Identifier(table)),
        [run_id, dates],
    ).fetchall()
    return {r[0]: r[1] for r in rows}


def _flatten_metrics(metrics: dict) -> dict[str, float]:
    flat = {}
    for key, value in metrics.items():
        if isinstance(value, bool):
            continue
        if isinstance(value, int | float | np.integer | np.floating) and value is not None and np.isfinite(value):
            flat[key] = float(value)
        elif isinstance(value, dict):
            for sub, v in value.items():
                if isinstance(v, int | float) and not isinstance(v, bool) and np.isfinite(v):
                    flat[f"{key}.{sub}"] = float(v)
    return flat


def _monitored_columns(table: str, frame: pd.DataFrame) -> pd.DataFrame:
    """The part of newly scored rows that monitoring and the drift check read, kept for the whole
    run: key, score and grade columns (not reasons), and of forecasts only the next month's."""
    score_columns = {module.OUTPUT_TABLE: module.SCORE_COLUMN for module in MODULES.values()}
    wanted = ["customer_id", "as_of_month", score_columns.get(table), "horizon", "model_grade", "final_grade"]
    if "horizon" in frame.columns:
        frame = frame[frame["horizon"] == 1]
    return frame[[c for c in wanted if c is not None and c in frame.columns]]


def _score_drift(name: str, ctx: _Context, scored: pd.DataFrame) -> tuple[float | None, str | None]:
    """Largest month-over-month PSI of the model's score in the newly scored months (against the
    month before each: published or newly scored), and the month it occurs in."""
    module = MODULES[name]
    column = module.SCORE_COLUMN
    if scored is None or scored.empty:
        return None, None
    if name == "consumption_forecast":
        scored = scored[scored["horizon"] == 1]
    new = pd.DataFrame({"as_of_month": pd.to_datetime(scored["as_of_month"]), column: scored[column].astype(float)})
    first = new["as_of_month"].min()
    extra = sql.SQL(" and horizon = 1") if name == "consumption_forecast" else sql.SQL("")
    query = sql.SQL(
        "select as_of_month, {c} from ml.{t} where as_of_month = "
        "(select max(as_of_month) from ml.{t} where as_of_month < {first}{x}){x}"
    ).format(c=sql.Identifier(column), t=sql.Identifier(module.OUTPUT_TABLE), first=sql.Literal(first.date()), x=extra)
    previous = read_sql_frame(ctx.pg, query, dtypes={"as_of_month": "date", column: "float"})
    ctx.pg.commit()
    mon = ctx.cfg["monitoring"]
    both = pd.concat([previous, new], ignore_index=True)
    psi = psi_month_over_month(
        both,
        "as_of_month",
        [column],
        int(mon["psi_bins"]),
        float(mon["psi_thresholds"]["investigate"]),
        float(mon["psi_thresholds"]["act"]),
    )
    psi = psi[psi["as_of_month"] >= first].dropna(subset=["psi"])
    if psi.empty:
        return None, None
    worst = psi.loc[psi["psi"].idxmax()]
    return float(worst["psi"]), f"{pd.Timestamp(worst['as_of_month']):%Y-%m}"


def _reuse_current(name: str, ctx: _Context, current: dict, reason: str, lap) -> tuple[ModelOutcome | None, str]:
    """Score the months without published rows with the current version, without training.

    Returns the outcome, or None and the reason to train after all (the artifact is missing or
    the current version's score drifted past the PSI "act" threshold on the new months).
    """
    model = load_artifact(ctx.pg, current["run_id"])
    ctx.pg.commit()
    if model is None:
        return None, f"the current version {current['run_id']} has no stored model"
    if name == "consumption_forecast":
        ctx.long = consumption.consumption_frame(ctx.ds, ctx.pg, ctx.cfg)
    lap("load_model_s")
    outcome = ModelOutcome(
        model_name=name,
        status="reused",
        reason=reason,
        retrain_reason=reason,
        run_id=current["run_id"],
        model_version=current["model_version"],
        scoring_run_id=current["run_id"],
        scoring_model_version=current["model_version"],
        trained=False,
        metrics=dict(current.get("metrics") or {}),
    )
    months = _months_to_score(name, ctx)
    if not months:
        return outcome, reason
    notes = _score_and_stage(name, ctx, model, months, current["run_id"], current["model_version"], outcome, lap)
    act = float(ctx.cfg["monitoring"]["psi_thresholds"]["act"])
    # Drift is judged on the months new to this run (not on a --rescore of months already published).
    published = _published_months(ctx.pg, MODULES[name].OUTPUT_TABLE)
    scored = ctx.new_rows.get(MODULES[name].OUTPUT_TABLE)
    if scored is not None and len(scored) and published:
        newest = month_from_index(max(published)).date()
        scored = scored[pd.to_datetime(scored["as_of_month"]).dt.date > newest]
    drift, month = _score_drift(name, ctx, scored)
    lap("drift_s")
    if drift is not None and drift >= act:
        # A new version is trained and scores these months again: take back what was staged.
        ctx.build.discard(list(outcome.rows))
        for table in outcome.rows:
            ctx.new_rows.pop(table, None)
        return None, f"the current version's score PSI {drift:.3f} in {month} passed the act threshold {act}"
    outcome.notes.extend(notes)
    return outcome, reason


def run_model(name: str, ctx: _Context) -> ModelOutcome:
    began = time.perf_counter()
    cfg, pg, build = ctx.cfg, ctx.pg, ctx.build
    timings: dict[str, float] = {}
    clock = [time.perf_counter()]

    def lap(step: str) -> None:
        now = time.perf_counter()
        timings[step] = round(timings.get(step, 0.0) + now - clock[0], 3)
        clock[0] = now

    current = current_run(pg, name)
    due = retrain_decision(
        current=current,
        last_trained=last_trained_run(pg, name),
        latest_month=f"{month_from_index(ctx.ds.latest_month):%Y-%m}",
        code_fingerprint=ctx.code_fp,
        config_fingerprint=ctx.config_fp,
        every_months=int(cfg["discipline"].get(RETRAIN_KEY, 1)),
        forced=ctx.retrain,
    )
    pg.commit()
    retrain_reason = due.reason
    if not due.retrain:
        reused, retrain_reason = _reuse_current(name, ctx, current, due.reason, lap)
        if reused is not None:
            reused.timings = timings
            reused.seconds = time.perf_counter() - began
            return reused

    plan = _plan(name, ctx)
    lap("plan_s")
    ident = run_identity(name, plan, ctx.code_fp, ctx.config_fp)
    run_id = ident["run_id"]
    existing = get_run(pg, run_id)
    pg.commit()
    model, trained = None, False
    if existing is not None and existing["status"] == "promoted":
        model = load_artifact(pg, run_id)
    if model is None:
        model = _fit(name, ctx, plan)
        trained = True
    lap("fit_s")
    parameters = plan.parameters if trained or existing is None else existing["parameters"]
    metrics, deciles = _evaluate(name, ctx, model, plan)
    metrics["notes"] = list(plan.notes)
    lap("evaluate_s")

    gate = cfg["discipline"]["promotion"][name]
    metric = gate["metric"]
    champion = None
    if current is None:
        decision = promotion_decision(
            metrics.get(metric), None, metric, gate["higher_is_better"], float(gate["tolerance"]), has_current=False
        )
    elif current["run_id"] == run_id:
        # A rerun of the current version: the gate already decided; keep its record as it was.
        decision = GateDecision(True, existing["status_reason"] if existing else "already the current version")
        previous = (existing or {}).get("metrics") or {}
        for key, value in previous.items():
            if key.startswith("current_version_"):
                metrics[key] = value
        metrics["notes"].extend(n for n in previous.get("notes", []) if n.startswith("current version"))
    else:
        champion = load_artifact(pg, current["run_id"])
        champion_value = None
        if champion is not None:
            try:
                champion_metrics, _ = _evaluate(name, ctx, champion, plan)
                champion_value = champion_metrics.get(metric)
            except Exception as error:  # an artifact of older code may not fit today's data or code
                metrics["notes"].append(f"current version could not be evaluated: {type(error).__name__}: {error}")
        metrics[f"current_version_{metric}"] = champion_value
        decision = promotion_decision(
            metrics.get(metric),
            champion_value,
            metric,
            gate["higher_is_better"],
            float(gate["tolerance"]),
            has_current=True,
        )
    pg.commit()
    plan.data = None  # the training rows are not needed to score: free them first (ADR 0097)
    lap("gate_s")

    if decision.promote:
        scorer, scoring_run, scoring_version = model, run_id, ident["model_version"]
    elif champion is not None:
        scorer, scoring_run, scoring_version = champion, current["run_id"], current["model_version"]
    else:
        scorer, scoring_run, scoring_version = None, None, None

    outcome = ModelOutcome(
        model_name=name,
        status="promoted" if decision.promote else "rejected",
        reason=decision.reason,
        run_id=run_id,
        model_version=ident["model_version"],
        scoring_run_id=scoring_run,
        scoring_model_version=scoring_version,
        trained=trained,
        metrics=metrics,
        retrain_reason=retrain_reason,
    )
    months = _months_to_score(name, ctx) if scorer is not None else []
    if months:
        notes = _score_and_stage(name, ctx, scorer, months, scoring_run, scoring_version, outcome, lap)
        outcome.notes.extend(notes)
        metrics["notes"].extend(notes)

    # Run record (rewritten identically by a rerun with the same inputs).
    split = plan.split.describe()
    record = pd.DataFrame(
        [
            {
                "run_id": run_id,
                "model_name": name,
                "model_version": ident["model_version"],
                "train_window_first_month": ident["train_window_first_month"],
                "train_window_last_month": ident["train_window_last_month"],
                "test_first_month": pd.Timestamp(split["test_first_month"] + "-01").date()
                if split["test_first_month"]
                else None,
                "test_last_month": pd.Timestamp(split["test_last_month"] + "-01").date()
                if split["test_last_month"]
                else None,
                "label_column": plan.label_column,
                "fingerprint": ident["fingerprint"],
                "data_fingerprint": plan.data_fingerprint,
                "code_fingerprint": ctx.code_fp,
                "config_fingerprint": ctx.config_fp,
                # data_last_month: the latest as-of month this training saw; the retrain cadence counts from it.
                "parameters": {
                    **(parameters or {}),
                    "split": split,
                    "data_last_month": f"{month_from_index(ctx.ds.latest_month):%Y-%m}",
                },
                "metrics": metrics,
                "status": outcome.status,
                "status_reason": decision.reason,
                "compared_with_run_id": (
                    current["run_id"]
                    if current and current["run_id"] != run_id
                    else (existing or {}).get("compared_with_run_id")
                ),
                "is_current": decision.promote,
                "created_at": existing["created_at"] if existing else ctx.started_at,
            }
        ]
    )
    build.stage("model_runs", record, Scope.equals(run_id=run_id))
    if decision.promote:
        build.add_statement(
            "model_runs",
            sql.SQL("update model_runs set is_current = false where model_name = %s and run_id <> %s and is_current"),
            [name, run_id],
        )
        if not pg.execute("select 1 from ml.model_artifacts where run_id = %s", [run_id]).fetchone():
            blob, digest = dump_artifact(model)
            build.stage(
                "model_artifacts",
                pd.DataFrame([{"run_id": run_id, "model_name": name, "artifact": blob, "artifact_sha256": digest}]),
                Scope.equals(run_id=run_id),
            )
        pg.commit()
    flat = _flatten_metrics(metrics)
    build.stage(
        "model_run_metrics",
        pd.DataFrame(
            [{"run_id": run_id, "model_name": name, "metric": k, "value": v} for k, v in sorted(flat.items())],
            columns=["run_id", "model_name", "metric", "value"],
        ),
        Scope.equals(run_id=run_id),
    )
    if deciles is not None and len(deciles):
        dec = deciles.rename(columns={"n": "customers"}).assign(run_id=run_id, model_name=name)
        build.stage("model_metrics_by_decile", dec, Scope.equals(run_id=run_id))
    lap("record_s")
    outcome.timings = timings
    outcome.seconds = time.perf_counter() - began
    return outcome


# -- monitoring ------------------------------------------------------------------------------------
def _not_in_dates(dates: list) -> sql.Composable:
    if not dates:
        return sql.SQL("true")
    return sql.SQL("as_of_month <> all({}::date[])").format(sql.Literal([str(d) for d in dates]))


def _published_scores(
    ctx: _Context, table: str, column: str, exclude_dates: list, extra: str = "", only_dates: list | None = None
) -> pd.DataFrame:
    only = sql.SQL("")
    if only_dates is not None:
        only = sql.SQL(" and as_of_month = any({}::date[])").format(sql.Literal([str(d) for d in only_dates]))
    query = sql.SQL("select customer_id, as_of_month, {} as value from ml.{} where {}{}{}").format(
        sql.Identifier(column), sql.Identifier(table), _not_in_dates(exclude_dates), sql.SQL(extra), only
    )
    frame = read_sql_frame(ctx.pg, query, dtypes={"customer_id": "string", "as_of_month": "date", "value": "float"})
    ctx.pg.commit()
    return frame


def feature_psi(ds: Dataset, months: list[int], bins: int, investigate: float, act: float) -> pd.DataFrame:
    """PSI of every feature in each of ``months`` against the month before.

    One pair of consecutive months at a time: the same rows, in the same order, as
    ``psi_month_over_month`` over all the months at once, without copying every month's features
    (twice, with its groups). An on-demand dataset reads each month once: a month is the current
    month of one pair and the reference of the next.
    """
    pairs = []
    previous = None
    for month in months:
        part = ds.window([month], ds.features)
        current = part.frame.iloc[month_rows(part, [month])][[ds.month_col, *ds.features]]
        del part
        if previous is not None:
            pair = pd.concat([previous, current], ignore_index=True)
            pairs.append(psi_month_over_month(pair, ds.month_col, ds.features, bins, investigate, act))
        previous = current
    if not pairs:
        return psi_month_over_month(ds.frame.iloc[:0], ds.month_col, ds.features, bins, investigate, act)
    return pd.concat(pairs, ignore_index=True)


def _grade_bad_rates(ctx: _Context, label: str, horizon: int) -> pd.DataFrame | None:
    """Bad rate per as-of month and grade of every published and new credit score (None: no scores).

    Each month's rates need only that month's scores and labels, so months are taken a few at a
    time (ADR 0097): the published scores stream in month order (on the log connection, while the
    labels of the months already complete are read on the main one), the new ones go by batches.
    """
    ds = ctx.ds
    mature_until = ds.latest_month - horizon
    new = ctx.new_rows.get("credit_scores")
    new_dates = sorted(set(new["as_of_month"])) if new is not None and len(new) else []
    parts: list[pd.DataFrame] = []

    def rates(scores: pd.DataFrame) -> None:
        scores = scores.assign(**{MONTH_INDEX: month_index(scores["as_of_month"])})
        # an immature month's rates need no label (grade_bad_rate counts its customers only)
        mature = sorted(int(m) for m in scores[MONTH_INDEX].unique() if m <= mature_until)
        if mature:
            frame = ds.window(mature, [label]).frame
            labels = frame[[ds.customer_col, MONTH_INDEX, label]].rename(
                columns={ds.customer_col: "customer_id", MONTH_INDEX: "m"}
            )
        else:
            labels = scores[["customer_id", MONTH_INDEX]].rename(columns={MONTH_INDEX: "m"}).assign(**{label: np.nan})
        bad = grade_bad_rate(
            scores[["customer_id", MONTH_INDEX, "model_grade", "final_grade"]].rename(columns={MONTH_INDEX: "m"}),
            labels,
            ["customer_id", "m"],
            label,
            mature_until,
        )
        month_dates = scores.drop_duplicates(MONTH_INDEX).set_index(MONTH_INDEX)["as_of_month"]
        bad["as_of_month"] = bad["as_of_month"].map(month_dates)
        parts.append(bad)

    query = sql.SQL(
        "select customer_id, as_of_month, model_grade, final_grade from ml.credit_scores where {} order by as_of_month"
    ).format(_not_in_dates(new_dates))
    types = {"customer_id": "string", "as_of_month": "date", "model_grade": "string", "final_grade": "string"}
    pending = None
    for chunk in iter_sql_chunks(ctx.log, query, dtypes=types):
        pending = chunk if pending is None else pd.concat([pending, chunk], ignore_index=True)
        complete = (pending["as_of_month"] < pending["as_of_month"].max()).to_numpy()
        if complete.any():  # months before the last one read are complete (rows come in month order)
            rates(pending.loc[complete])
            pending = pending.loc[~complete].reset_index(drop=True)
    if pending is not None and len(pending):
        rates(pending)
    if new is not None and len(new):
        new = new[["customer_id", "as_of_month", "model_grade", "final_grade"]].assign(
            as_of_month=lambda f: pd.to_datetime(f["as_of_month"])
        )
        new_month = month_index(new["as_of_month"])
        max_rows = int(ctx.cfg["discipline"].get(SCORE_BATCH_KEY, 100_000))
        for batch in score_batches(ds, np.unique(new_month), max_rows):
            rates(new.loc[np.isin(new_month, batch)])
    if not parts:
        return None
    # As one call over every month lists them: model grades, then final grades, each by month and grade.
    bad = pd.concat(parts, ignore_index=True)
    bad["_order"] = bad["grade_type"].map({"model": 0, "final": 1})
    bad = bad.sort_values(["_order", "as_of_month"], kind="stable", ignore_index=True).drop(columns="_order")
    bad["as_of_month"] = bad["as_of_month"].dt.date
    return bad


def stage_monitoring(
    ctx: _Context, outcomes: dict[str, ModelOutcome], timings: dict[str, float] | None = None
) -> dict[str, int]:
    """PSI of each model's score and of each feature month over month; bad rate per grade.

    ``timings``, if given, receives the seconds of each part (score PSI, feature PSI, grade bad
    rates), which the run summary records beside ``monitoring_s``.
    """
    timings = {} if timings is None else timings
    clock = time.perf_counter()
    mon = ctx.cfg["monitoring"]
    bins, inv, act = (
        int(mon["psi_bins"]),
        float(mon["psi_thresholds"]["investigate"]),
        float(mon["psi_thresholds"]["act"]),
    )
    n_months = int(mon["months"])
    rows: dict[str, int] = {}
    frames = []
    for name, module in MODULES.items():
        outcome = outcomes.get(name)
        if outcome is None or outcome.status == "skipped":
            continue
        table, column = module.OUTPUT_TABLE, module.SCORE_COLUMN
        new = ctx.new_rows.get(table)
        extra = " and horizon = 1" if name == "consumption_forecast" else ""
        new_dates = sorted(set(new["as_of_month"])) if new is not None and len(new) else []
        # Only the last `monitoring.months` months (published or new) are compared: read only those.
        published = ctx.pg.execute(
            sql.SQL("select distinct as_of_month from ml.{} where {}{}").format(
                sql.Identifier(table), _not_in_dates(new_dates), sql.SQL(extra)
            )
        ).fetchall()
        recent_dates = sorted({r[0] for r in published} | set(new_dates))[-n_months:]
        old = _published_scores(ctx, table, column, new_dates, extra, only_dates=recent_dates)
        parts = [old]
        if new is not None and len(new):
            part = new if name != "consumption_forecast" else new[new["horizon"] == 1]
            parts.append(
                pd.DataFrame(
                    {
                        "customer_id": part["customer_id"],
                        "as_of_month": pd.to_datetime(part["as_of_month"]),
                        "value": part[column].astype(float),
                    }
                )
            )
        both = pd.concat(parts, ignore_index=True)
        if both.empty:
            continue
        both = both.rename(columns={"value": column})
        recent = sorted(both["as_of_month"].unique())[-n_months:]
        both = both[both["as_of_month"].isin(recent)]
        psi = psi_month_over_month(both, "as_of_month", [column], bins, inv, act)
        psi.insert(0, "model_name", name)
        psi["variable_kind"] = "score"
        frames.append((psi, Scope.equals(model_name=name, variable_kind="score")))
    ds = ctx.ds
    timings["score_psi_s"] = round(time.perf_counter() - clock, 3)
    clock = time.perf_counter()
    recent = ds.months[-n_months:]
    fpsi = feature_psi(ds, recent, bins, inv, act)
    fpsi.insert(0, "model_name", "features")
    fpsi["variable_kind"] = "feature"
    frames.append((fpsi, Scope.equals(model_name="features", variable_kind="feature")))
    for frame, scope in frames:
        if len(frame):
            frame["as_of_month"] = pd.to_datetime(frame["as_of_month"]).dt.date
            frame["reference_month"] = pd.to_datetime(frame["reference_month"]).dt.date
        rows["monitoring_psi"] = rows.get("monitoring_psi", 0) + ctx.build.stage("monitoring_psi", frame, scope)
    timings["feature_psi_s"] = round(time.perf_counter() - clock, 3)
    clock = time.perf_counter()

    # Observed bad rate per grade: every published and new credit score against the labels.
    role = ctx.cfg["credit_score"]["label"]
    label = ds.labels.get(role)
    if label is not None:
        bad = _grade_bad_rates(ctx, label, int(ctx.cfg["inputs"]["label_horizon_months"][role]))
        if bad is not None:
            rows["monitoring_grade_bad_rate"] = ctx.build.stage("monitoring_grade_bad_rate", bad, Scope.everything())
    timings["grade_bad_rate_s"] = round(time.perf_counter() - clock, 3)
    return rows


# -- entry point -----------------------------------------------------------------------------------
def score_all(
    conn: warehouse.Connection,
    console: Console | None = None,
    *,
    models: list[str] | None = None,
    rescore: bool = False,
    truth_dir: Path | None = None,
    cfg: dict | None = None,
    publish: bool = True,
    read_build_area: bool = False,
    work_as: str | None = None,
    retrain: bool = False,
) -> dict:
    """Run every model and publish its outputs to the ``ml`` schema in one atomic switch.

    Parameters
    ----------
    conn : gridcredit.warehouse.Connection
        The warehouse (the feature marts must be built).
    console : rich.console.Console, optional
        Where to print the summary.
    models : list of str, optional
        Subset of ``credit_score, arrears_warning, theft_suspicion, consumption_forecast``.
    rescore : bool
        Rescore the whole backfill window with the current versions (default: only as-of months
        without published rows).
    truth_dir : Path, optional
        Simulator truth folder for extra metrics; default: ``truth/`` next to the latest loaded extract.
    cfg : dict, optional
        Configuration (default :func:`gridcredit.ml.config.load_config`).
    publish : bool
        False prepares ``ml__build`` (the next state of every ``ml`` table) and stops before the
        switch: `gridcredit run` publishes it together with the dbt marts (write-audit-publish).
    read_build_area : bool
        Read the input marts from their build area (``marts_ml__build`` for ``marts_ml``, ...), as
        `gridcredit run` does before anything is published. The configuration fingerprint (and so
        the model version) does not depend on it.
    work_as : str, optional
        ``"ml"``: both sessions work as the ML stage's role (gridcredit_ml: reads the feature marts,
        writes ``ml`` and ``ml__build``; gridcredit/access.py), as `gridcredit run` does after
        applying the access rules. None: the login role.
    retrain : bool
        Train a new version of every selected model now, whatever the retrain cadence
        (``discipline.retrain_every_months``) says; the promotion gate still decides.

    Returns
    -------
    dict
        ``{"models": {name: outcome as dict}, "published_rows": {...}, "seconds": float}``.

    Raises
    ------
    LookupError
        The feature mart does not exist.
    """
    began = time.perf_counter()
    console = console or Console(stderr=True, quiet=True)
    cfg = cfg or load_config()
    selected = list(models or MODEL_NAMES)
    unknown = [m for m in selected if m not in MODEL_NAMES]
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; choose from {list(MODEL_NAMES)}")
    started_at = datetime.now(UTC)
    config_fp = config_fingerprint(cfg)
    if read_build_area:
        cfg = inputs_from_build_area(cfg)
    threads = int(cfg["discipline"].get("threads", 1))
    with (
        threadpool_limits(limits=threads),
        warehouse.connect(conn) as pg,
        warehouse.connect(conn, autocommit=True) as log,
    ):
        pg.execute("set client_connection_check_interval = '1s'")
        pg.commit()
        # The simulator's truth folder (extra metrics on simulated data) is named in the load ledger,
        # which the ML role does not read: look it up before switching to that role.
        truth_dir = truth_dir if truth_dir is not None else discover_truth_dir(pg)
        if work_as:
            from gridcredit import access

            access.work_as(pg, work_as)
            access.work_as(log, work_as)
        ensure_schema(pg)
        pg.commit()
        close_interrupted_attempts(log)
        steps: dict[str, float] = {}
        clock = time.perf_counter()
        ds = open_dataset(pg, cfg)  # months are read when a step needs them (ADR 0097)
        pg.commit()
        steps["load_features_s"] = round(time.perf_counter() - clock, 3)
        build = BuildArea(pg)
        build_area_reset = build.reset()
        ctx = _Context(pg, log, build, ds, cfg, code_fingerprint(), config_fp, truth_dir, rescore, started_at, retrain)
        outcomes: dict[str, ModelOutcome] = {}
        for name in selected:
            attempt = start_attempt(log, name, None)
            try:
                if ds.n_rows == 0:
                    raise InsufficientHistory(f"{cfg['inputs']['features_table']} has no rows")
                outcome = run_model(name, ctx)
            except InsufficientHistory as error:
                pg.rollback()
                outcome = ModelOutcome(model_name=name, status="skipped", reason=str(error))
                finish_attempt(log, attempt, "skipped", str(error))
            except Exception as error:
                finish_attempt(log, attempt, "failed", f"{type(error).__name__}: {error}")
                raise
            else:
                message = outcome.reason
                if outcome.status != "reused" and outcome.retrain_reason:
                    message += f" [trained because: {outcome.retrain_reason}]"
                finish_attempt(log, attempt, outcome.status, message, outcome.run_id)
            outcomes[name] = outcome
        clock = time.perf_counter()
        steps["models_s"] = round(clock - began - steps["load_features_s"], 3)
        monitoring_steps: dict[str, float] = {}
        monitoring_rows = stage_monitoring(ctx, outcomes, monitoring_steps) if ds.n_rows else {}
        steps["monitoring_s"] = round(time.perf_counter() - clock, 3)
        steps.update({f"monitoring_{part}": seconds for part, seconds in monitoring_steps.items()})
        clock = time.perf_counter()
        if publish:
            published = build.publish()
        else:
            build.prepare()
            published = {}
        steps["write_back_s"] = round(time.perf_counter() - clock, 3)
    summary = {
        "models": {name: asdict(o) for name, o in outcomes.items()},
        "monitoring_rows": monitoring_rows,
        "published_rows": published,
        "truth_dir": str(truth_dir) if truth_dir else None,
        "build_area_reset": build_area_reset,  # kept / undone / copied (ADR 0111)
        "timings": steps,  # whole-run steps; each model's own steps are in models[...]["timings"]
        "seconds": round(time.perf_counter() - began, 2),
    }
    print_summary(console, outcomes, published)
    return summary


def inputs_from_build_area(cfg: dict) -> dict:
    """A copy of ``cfg`` whose input tables in published mart schemas name their build area."""
    import copy
    import re

    out = copy.deepcopy(cfg)
    for key, value in out["inputs"].items():
        if isinstance(value, str):
            out["inputs"][key] = re.sub(r"^(marts\w*|reference)\.", r"\1__build.", value)
    return out


def headline(outcome: ModelOutcome) -> str:
    m = outcome.metrics or {}

    def f(key, fmt="{:.3f}"):
        value = m.get(key)
        return fmt.format(value) if isinstance(value, int | float) else "n/a"

    if outcome.model_name in ("credit_score", "arrears_warning"):
        text = f"AUC {f('auc')} KS {f('ks')}"
        if "baseline_persistence_auc" in m:
            text += f" (persistence AUC {f('baseline_persistence_auc')})"
        if "truth_financial_health_auc" in m:
            text += f" [truth health AUC {f('truth_financial_health_auc')}]"
        return text
    if outcome.model_name == "theft_suspicion":
        text = (
            f"precision@{m.get('inspection_capacity', '?')} {f('precision_at_capacity')} "
            f"(ceiling {f('precision_at_capacity_ceiling')})"
        )
        if "truth_precision_at_capacity" in m:
            text += f" truth {f('truth_precision_at_capacity')} (ceiling {f('truth_precision_at_capacity_ceiling')})"
        return text
    return f"MAE/seasonal-naive MAE {f('mae_ratio')} MASE {f('mase')} WAPE {f('wape')}"


def print_summary(console: Console, outcomes: dict[str, ModelOutcome], published: dict[str, int]) -> None:
    table = Table(title="gridcredit score")
    for column in ("model", "status", "version", "months scored", "out-of-time metrics", "why"):
        table.add_column(column, overflow="fold")
    for o in outcomes.values():
        months = f"{o.months_scored[0]}..{o.months_scored[-1]}" if o.months_scored else "-"
        table.add_row(
            o.model_name,
            o.status,
            o.scoring_model_version or "-",
            months,
            headline(o) if o.status != "skipped" else "-",
            o.reason,
        )
    console.print(table)
    if published:
        console.print("published: " + ", ".join(f"ml.{t} {n:,}" for t, n in sorted(published.items())), highlight=False)
