"""`gridcredit run`: every stage after generation, in order, with a run ledger: write-audit-publish.

Stages: ingest (when --data is given) -> freshness (the sources' freshness rules on the load ledger,
gridcredit/freshness.py; dbt source freshness when no manifest is there yet) -> dbt (the build area's
incremental marts catch up from the published ones, ADR 0094; then seeds, models up to the feature
mart, their tests, into the build area ``<schema>__build``)
-> score (ML models, prepared in ``ml__build``) -> dbt_after_scoring (marts that use scores, into
the build area, with their tests) -> publish (ONE transaction switches every build area in, see
gridcredit/publish.py) -> summary. Nothing reaches a published schema unless every error-severity
test passed; a failed test is named with the table holding its failing rows.

Each run and stage is recorded in ``ops.pipeline_runs`` / ``ops.pipeline_stage_runs``. A run after
a failed or killed one resumes after the stages that run completed when that is safe (same code,
same data folder, no new load, nothing published since): see :func:`resumable_stages`.

Fault injection for crash tests (gridcredit/faults.py): ``GRIDCREDIT_KILL_AT=pipeline:<stage>``
before a stage starts, ``dbt:<n>`` / ``dbt_after_scoring:<n>`` when the n-th dbt node finished,
plus the named points of ingestion, ML (``ml:...``) and publish (``publish:...``).
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg
from rich.console import Console
from rich.table import Table

from gridcredit import dbt_child, faults, privacy, settings, spark, warehouse
from gridcredit.publish import PUBLISHED_SCHEMAS_SQL

LEDGER_DDL = """
create schema if not exists ops;
create table if not exists ops.pipeline_runs (
    run_id bigint generated always as identity primary key,
    command text not null,
    data_dir text,
    started_at timestamptz not null default now(),
    finished_at timestamptz,
    status text not null default 'running' check (status in ('running', 'succeeded', 'failed')),
    message text
);
alter table ops.pipeline_runs add column if not exists resume_token jsonb;
create table if not exists ops.pipeline_stage_runs (
    run_id bigint not null references ops.pipeline_runs (run_id),
    stage text not null,
    started_at timestamptz not null default now(),
    finished_at timestamptz,
    status text not null default 'running' check (status in ('running', 'succeeded', 'failed')),
    duration_s double precision,
    detail text,
    primary key (run_id, stage)
);
alter table ops.pipeline_stage_runs add column if not exists rows_written bigint;
comment on column ops.pipeline_stage_runs.rows_written is
    'Rows the stage wrote: loaded into raw (ingest), by dbt models and seeds, staged by ML (score), '
    'switched into ml (publish).';
"""


class PipelineError(RuntimeError):
    """A stage failed; the message says which and why."""


@dataclass
class StageResult:
    stage: str
    seconds: float
    detail: str
    rows: int | None = None


@dataclass
class StageOutcome:
    """What a stage reports: a line for the ledger and the rows it wrote (None: not counted)."""

    detail: str
    rows: int | None = None


class RunLedger:
    """Run records in ops.* (their own autocommit connection, so a failed stage is still recorded)."""

    def __init__(self, conn: warehouse.Connection, command: str, data_dir: Path | None) -> None:
        self.pg = warehouse.connect(conn, autocommit=True)
        self.pg.execute(LEDGER_DDL)
        self.run_id = self.pg.execute(
            "insert into ops.pipeline_runs (command, data_dir) values (%s, %s) returning run_id",
            [command, str(data_dir) if data_dir else None],
        ).fetchone()[0]
        # A run killed earlier never recorded its end: close those records honestly.
        self.pg.execute(
            "update ops.pipeline_runs set status = 'failed', finished_at = coalesce(finished_at, now()),"
            " message = 'interrupted (process ended without recording an outcome)'"
            " where status = 'running' and run_id <> %s",
            [self.run_id],
        )
        self.pg.execute(
            "update ops.pipeline_stage_runs set status = 'failed', finished_at = now(),"
            " detail = 'interrupted' where status = 'running' and run_id <> %s",
            [self.run_id],
        )

    def record_resume_token(self, token: dict) -> None:
        self.pg.execute(
            "update ops.pipeline_runs set resume_token = %s::jsonb where run_id = %s", [json.dumps(token), self.run_id]
        )

    def stage_started(self, stage: str) -> None:
        self.pg.execute("insert into ops.pipeline_stage_runs (run_id, stage) values (%s, %s)", [self.run_id, stage])

    def stage_finished(self, stage: str, status: str, seconds: float, detail: str, rows: int | None = None) -> None:
        self.pg.execute(
            "update ops.pipeline_stage_runs set status = %s, finished_at = now(), duration_s = %s,"
            " detail = %s, rows_written = %s where run_id = %s and stage = %s",
            [status, seconds, detail, rows, self.run_id, stage],
        )

    def finish(self, status: str, message: str | None = None) -> None:
        self.pg.execute(
            "update ops.pipeline_runs set status = %s, finished_at = now(), message = %s where run_id = %s",
            [status, message, self.run_id],
        )
        self.pg.close()


def release_freed_memory() -> bool:
    """Hand the memory this process freed back to the system (glibc `malloc_trim`), between stages.

    glibc keeps freed heap memory in its arenas for reuse. At 100k the run process still held
    1.68 GiB after scoring (session 10), most likely the validation thread's freed hash blocks
    (ADR 0102), while the dbt build and the database server needed the memory (docs/decisions/0103).
    False where there is no glibc.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    return bool(libc.malloc_trim(0))


def _stage_ingest(conn: warehouse.Connection, data: Path, encoding: str | None, console: Console) -> StageOutcome:
    from gridcredit.ingestion.loader import IngestError, ingest_directory

    try:
        summary = ingest_directory(data, conn=conn, encoding=encoding, console=console, work_as="ingest")
    except IngestError as error:
        raise PipelineError(f"ingest failed: {error}") from error
    # Fresh partitions have no statistics until autovacuum gets to them; without them PostgreSQL
    # misjudges row counts and the dbt build's joins run orders of magnitude slower.
    with warehouse.connect(conn, autocommit=True) as pg:
        tables = pg.execute(
            "select format('%I.%I', schemaname, tablename) from pg_tables"
            " where schemaname like 'raw\\_%' and tablename not like '%\\_\\_load\\_%'"
        ).fetchall()
        for (table,) in tables:
            pg.execute(f"analyze {table}")
    return StageOutcome(str(summary), summary.rows_loaded)


# dbt phases around the ML step (selectors in dbt_project/selectors.yml): the ML step reads the
# feature mart built before it and its tables come back as dbt sources for the marts that use
# scores. Every phase builds into the build area. Seeds (configuration) load inside the first build,
# before the models that read them: dbt ignores --exclude next to --selector, so a separate
# `dbt seed` loaded every seed twice and cost one more dbt start and grant pass (ADR 0020).
BUILD_AREA_VARS = ["--vars", json.dumps({"build_area": True, "ml_schema": "ml__build"})]
DBT_BEFORE_SCORING = [["build", "--selector", "before_scoring", *BUILD_AREA_VARS]]
DBT_AFTER_SCORING = [["build", "--selector", "after_scoring", *BUILD_AREA_VARS]]
# Engine spark (docs/SPARK.md): built in place, no build area (write-audit-publish is PostgreSQL-only).
DBT_ON_SPARK = [["seed"], ["build", "--selector", "before_scoring", "--exclude", "resource_type:seed"]]
# Set by the pipeline for both its builds when the last two published runs ran this code (ADR 0021,
# 0103, 0110; macros/tests/get_where_subquery.sql).
TESTS_SCOPE_ENV = "GRIDCREDIT_TESTS_CHANGED_AFTER_LOAD_ID"
# A dbt node finished ("12 of 340 OK created sql table model ...", "... PASS not_null_...").
DBT_NODE_DONE = re.compile(r"\b\d+ of \d+ (OK|PASS|WARN|ERROR|FAIL|SKIP)\b")


def _die_with_parent() -> None:
    """In the dbt child: get SIGKILL when `gridcredit run` dies, so a killed run leaves no dbt behind."""
    import ctypes
    import signal

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def run_dbt_streamed(
    args: list[str],
    conn: warehouse.Connection,
    stage: str,
    counter: list[int] | None = None,
    tests_changed_after_load_id: int | None = None,
) -> int:
    """dbt in a child process, its output passed through line by line.

    ``counter`` ([nodes finished so far in this stage]) numbers the fault points ``<stage>:<n>``.
    ``tests_changed_after_load_id``: row-level tests of month-rebuilt models read only the months
    changed after that load (ADR 0021), those of scored-month models the months rebuilt since the
    last publication (ADR 0110); None: every test reads whole tables.
    """
    counter = counter if counter is not None else [0]
    from gridcredit.cli import dbt_environment

    env = dbt_environment(conn)
    # An environment variable, not a dbt var: a var that differs between invocations makes dbt parse
    # the whole project again (~1-2 min under load), an environment variable read at run time does not.
    env.pop(TESTS_SCOPE_ENV, None)
    if tests_changed_after_load_id is not None:
        env[TESTS_SCOPE_ENV] = str(tests_changed_after_load_id)
    process = subprocess.Popen(
        [*dbt_child.command(), *args],
        cwd=settings.DBT_PROJECT_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
        preexec_fn=_die_with_parent if sys.platform == "linux" else None,
    )
    assert process.stdout is not None
    for line in process.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
        if DBT_NODE_DONE.search(line):
            counter[0] += 1
            faults.fault_point(stage, counter[0])
    return process.wait()


def dbt_target_path(env: dict[str, str] | None = None) -> Path:
    """Where dbt writes its artifacts (run_results.json, sources.json): DBT_TARGET_PATH when set
    (the benchmark sets it), else the project's target/."""
    value = (env if env is not None else os.environ).get("DBT_TARGET_PATH")
    if not value:
        return settings.DBT_PROJECT_DIR / "target"
    path = Path(value)
    return path if path.is_absolute() else settings.DBT_PROJECT_DIR / path


def dbt_rows_written(target: Path | None = None) -> int:
    """Rows the models and seeds of the last dbt invocation wrote (adapter responses in run_results.json)."""
    target = target or dbt_target_path()
    try:
        results = json.loads((target / "run_results.json").read_text())["results"]
    except (OSError, ValueError, KeyError):
        return 0
    return sum(
        max(0, int((result.get("adapter_response") or {}).get("rows_affected") or 0))  # views: -1
        for result in results
        if result.get("unique_id", "").startswith(("model.", "seed.")) and result.get("status") == "success"
    )


def dbt_failures(target: Path | None = None) -> list[str]:
    """What failed in the last dbt invocation: each failed test with the table of its failing rows."""
    target = target or dbt_target_path()
    try:
        results = json.loads((target / "run_results.json").read_text())["results"]
        nodes = json.loads((target / "manifest.json").read_text())["nodes"]
    except (OSError, ValueError, KeyError):
        return []
    lines = []
    for result in results:
        if result.get("status") not in ("fail", "error", "runtime error"):
            continue
        node = nodes.get(result["unique_id"], {})
        kind = node.get("resource_type", result["unique_id"].split(".")[0])
        name = node.get("name", result["unique_id"])
        if kind == "test" and result["status"] == "fail":
            where = node.get("relation_name") or "(not stored: the test has store_failures off)"
            lines.append(f"test {name} failed: {result.get('failures')} failing row(s), stored in {where}")
        else:
            message = (result.get("message") or "").strip().splitlines()
            lines.append(f"{kind} {name}: {result['status']}: {message[0] if message else ''}")
    return lines


def _stage_dbt(
    conn: warehouse.Connection,
    console: Console,
    phases: list[list[str]],
    stage: str,
    tests_changed_after_load_id: int | None = None,
    refresh: RefreshPlan | None = None,
) -> StageOutcome:
    from gridcredit import access
    from gridcredit.cli import dbt_role

    refresh = refresh or INCREMENTAL
    finished, rows = [0], 0
    for number, args in enumerate(phases):
        if refresh.mode == "full":
            args = [*args, "--full-refresh"]
        console.print(f"[bold]dbt {' '.join(args)}[/]")
        if dbt_role():
            # dbt works as the transformer role: grants on what ingest and ML created since (ADR 0080).
            access.apply(conn)
        if number == 0 and stage == "dbt" and BUILD_AREA_VARS[1] in args and refresh.mode != "full":
            rows += _catch_up_build_area(conn, console, replace_all=refresh.mode == "copy_published")
        code = run_dbt_streamed(args, conn, stage, finished, tests_changed_after_load_id)
        if code != 0:
            failures = dbt_failures()
            listed = "".join(f"\n  - {line}" for line in failures[:20])
            more = f"\n  ... and {len(failures) - 20} more" if len(failures) > 20 else ""
            if any("out of sync" in line for line in failures):
                more += (
                    "\nAn incremental model's columns differ from its table (built by other code):"
                    " `gridcredit run --full-refresh` rebuilds every model from raw."
                )
            raise PipelineError(
                f"`dbt {' '.join(args[:3])}` failed (exit {code}) in the build area; nothing was published"
                f" (the published schemas are unchanged).{listed}{more}\n"
                f"dbt log: {settings.DBT_PROJECT_DIR / 'logs' / 'dbt.log'}"
            )
        rows += dbt_rows_written()
    return StageOutcome("; ".join(f"dbt {' '.join(args[:3])}" for args in phases), rows)


def tests_changed_after_load(conn: warehouse.Connection, run_id: int, token: dict) -> int | None:
    """The load after which this run's row-level tests of month-rebuilt models need to look (ADR 0021).

    Every row of such a model written from loads up to the returned id passed every error-severity
    test, under this code, in a run that published: the previous two published runs ran this code
    (two, because the build area holds the state published one run before the last: ADR 0090/0094).
    None (test whole tables) after a code change, for the first two runs, or when unsure.
    """
    with warehouse.connect(conn, autocommit=True) as pg:
        published = [published_token for _, published_token in _published_run_tokens(pg, run_id, 2)]
    if len(published) < 2 or any(row.get("code") != token["code"] for row in published):
        return None
    last_load = published[0].get("last_load_id")
    return int(last_load) if last_load is not None else None


@dataclass(frozen=True)
class RefreshPlan:
    """How this run's dbt build treats what earlier runs built (ADR 0095).

    ``incremental``: incremental models add what changed; ``copy_published``: the build area's
    incremental marts are replaced by copies of the published ones first (they were built by other dbt
    code one run earlier), then incremental; ``full``: every model is rebuilt from raw (dbt
    ``--full-refresh``), because rows built by other dbt code would otherwise stay.
    """

    mode: str
    reason: str


INCREMENTAL = RefreshPlan("incremental", "")


def refresh_plan(conn: warehouse.Connection, run_id: int, token: dict, forced: bool = False) -> RefreshPlan:
    """Decide from the run ledger whether this run's dbt code differs from what built the warehouse.

    Incremental models keep rows of earlier builds; after a change of a model, macro, seed (a policy)
    or project var those rows were computed by other code, and nothing else would ever recompute them.
    Full refresh when ``forced``, when the last published run or the last run that reached the build
    (it built staging and intermediate in place, even if it failed) ran other dbt code, or ran a
    version that did not record it. Copy when only the publication before the last did: the build area
    holds that run's marts (ADR 0090), the published ones are current.
    """
    if forced:
        return RefreshPlan("full", "--full-refresh given")
    current = token.get("dbt_code")
    with warehouse.connect(conn, autocommit=True) as pg:
        published = _published_run_tokens(pg, run_id, 2)
        last_built = pg.execute(
            "select run_id, resume_token from ops.pipeline_runs"
            " where run_id < %s and resume_token is not null and command = 'run'"
            " order by run_id desc limit 1",
            [run_id],
        ).fetchone()
    if last_built and last_built[1].get("dbt_code") != current:
        return RefreshPlan("full", f"run {last_built[0]} built the warehouse with other dbt code")
    if published and published[0][1].get("dbt_code") != current:
        return RefreshPlan("full", f"the published marts were built by other dbt code (run {published[0][0]})")
    if len(published) == 2 and published[1][1].get("dbt_code") != current:
        return RefreshPlan(
            "copy_published",
            f"the build area holds the marts of run {published[1][0]}, built by other dbt code",
        )
    return INCREMENTAL


def _published_run_tokens(pg: psycopg.Connection, run_id: int, limit: int) -> list[tuple[int, dict]]:
    """(run id, resume token) of the newest ``limit`` runs before ``run_id`` that published."""
    return pg.execute(
        """
        select runs.run_id, runs.resume_token
        from ops.pipeline_runs as runs
        where runs.run_id < %s
          and runs.command = 'run'
          and runs.status = 'succeeded'
          and runs.resume_token is not null
          and exists (
              select 1 from ops.pipeline_stage_runs as stages
              where stages.run_id = runs.run_id and stages.stage = 'publish' and stages.status = 'succeeded'
          )
        order by runs.run_id desc
        limit %s
        """,
        [run_id, limit],
    ).fetchall()


def _catch_up_build_area(conn: warehouse.Connection, console: Console, replace_all: bool = False) -> int:
    """Bring the build area's incremental marts level with the published ones (ADR 0094).

    Which marts are incremental comes from the last dbt invocation's manifest; without one (the first
    run) there is nothing published to copy from.
    """
    from gridcredit.publish import catch_up_build_area, incremental_marts

    try:
        manifest = json.loads((dbt_target_path() / "manifest.json").read_text())
    except (OSError, ValueError):
        return 0
    started = time.perf_counter()
    copied = catch_up_build_area(conn, incremental_marts(manifest), replace_all=replace_all)
    if copied:
        listed = ", ".join(f"{name} {rows:,}" for name, rows in copied.items())
        seconds = time.perf_counter() - started
        console.print(f"build area caught up from the published marts ({seconds:.1f} s): {listed}")
    return sum(copied.values())


# Raw deliveries only: the ML step's tables and analysts' overrides are not deliveries.
FRESHNESS_EXCLUDED_SOURCES = ("ml", "decisions")


def _stage_freshness(conn: warehouse.Connection, console: Console) -> str:
    """dbt source freshness of the raw sources (the load ledger): a stale source stops the run."""
    from gridcredit.cli import dbt_environment

    env = dbt_environment(conn)
    target = dbt_target_path(env)
    started = time.perf_counter()
    sources = _freshness_without_dbt(conn, target)
    if sources is not None:
        return _freshness_verdict(sources, console, f"from the load ledger, {time.perf_counter() - started:.1f} s")
    result = subprocess.run(
        # The same vars as the build phases: a change of vars would make dbt parse the project again.
        [
            *dbt_child.command(),
            *("source", "freshness", "--exclude", *(f"source:{name}" for name in FRESHNESS_EXCLUDED_SOURCES)),
            *BUILD_AREA_VARS,
        ],
        cwd=settings.DBT_PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        preexec_fn=_die_with_parent if sys.platform == "linux" else None,
    )
    try:
        sources = json.loads((target / "sources.json").read_text())["results"]
    except (OSError, ValueError, KeyError):
        sources = []
    if result.returncode != 0 and not any(s["status"] in ("error", "runtime error") for s in sources):
        raise PipelineError(f"dbt source freshness failed (exit {result.returncode}):\n{result.stdout[-3000:]}")
    return _freshness_verdict(sources, console, f"dbt, {time.perf_counter() - started:.1f} s")


def _freshness_without_dbt(conn: warehouse.Connection, target: Path) -> list[dict] | None:
    """The freshness results from the load ledger and the last manifest (gridcredit/freshness.py);
    None when dbt must answer: no manifest yet (first run), or a source the ledger rule does not cover."""
    from gridcredit import freshness

    path = target / "manifest.json"
    try:
        # A source's freshness settings may have changed since that manifest was written: then dbt decides.
        written = path.stat().st_mtime
        project = settings.DBT_PROJECT_DIR
        if any(p.stat().st_mtime > written for p in [project / "dbt_project.yml", *project.glob("models/**/*.yml")]):
            return None
        manifest = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    try:
        with warehouse.connect(conn) as pg:
            return freshness.ledger_freshness(pg, manifest, FRESHNESS_EXCLUDED_SOURCES)
    except psycopg.Error:
        return None


def _freshness_verdict(sources: list[dict], console: Console, how: str) -> str:
    """Stop the run on any source past its error_after (or never loaded); count the warnings."""
    stale, warned = [], 0
    for source in sources:
        name = source["unique_id"].split(".", 2)[-1]
        if source["status"] in ("error", "runtime error"):
            criteria = source.get("criteria", {}).get("error_after", {})
            age = source.get("max_loaded_at_time_ago_in_s")
            loaded = source.get("max_loaded_at") or "never"
            limit = f"{criteria.get('count')} {criteria.get('period')}(s)" if criteria.get("count") else "its limit"
            detail = f"{age / 86400:.0f} days old" if isinstance(age, int | float) else "no successful load"
            stale.append(f"{name}: last load {loaded} ({detail}), allowed {limit}")
        elif source["status"] == "warn":
            warned += 1
    if stale:
        listed = "".join(f"\n  - {line}" for line in stale)
        raise PipelineError(
            f"source freshness: {len(stale)} source(s) older than their threshold; the publish is stopped"
            f" (published schemas unchanged). Deliver a current extract (`gridcredit run --data ...`).{listed}"
        )
    summary = f"{len(sources)} sources checked, {warned} warn, 0 stale"
    console.print(f"source freshness ({how}): {summary}")
    return summary


def _stage_spark_sync(conn: warehouse.Connection, console: Console) -> str:
    try:
        endpoint = spark.current_endpoint()
        # With the pseudonym keys: personal columns are pseudonymised before they leave PostgreSQL.
        with warehouse.connect(conn, options=privacy.pg_options()) as pg, spark.connect(endpoint) as cursor:
            written = spark.export_to_spark(pg, cursor.execute, spark.raw_location(), progress=console.print)
    except spark.SparkError as error:
        raise PipelineError(f"spark sync failed: {error}") from error
    return f"{sum(written.values()):,} rows to {endpoint.url}"


def _stage_score(conn: warehouse.Connection, console: Console, retrain: bool = False) -> StageOutcome:
    from gridcredit import access
    from gridcredit.ml.scoring import score_all

    began = time.perf_counter()
    if access.stage_role("ml"):
        # The ML role reads the feature marts dbt just built in the build area: their grants first.
        access.apply(conn)
    grants_s = round(time.perf_counter() - began, 3)
    result = score_all(conn, console, publish=False, read_build_area=True, work_as="ml", retrain=retrain)
    # The ledger keeps, per model, whether it trained and its step times and rows (compact JSON,
    # read by bench/bench_pipeline.py for the training and scoring figures of the run).
    models = {
        name: {
            "status": outcome.get("status"),
            "trained": outcome.get("trained"),
            "timings": outcome.get("timings", {}),
            "rows": outcome.get("rows", {}),
            "seconds": round(outcome.get("seconds", 0.0), 2),
            "metrics": {
                k: v
                for k, v in (outcome.get("metrics") or {}).items()
                if k in ("auc", "precision_at_capacity", "mae_ratio")
            },
        }
        for name, outcome in result.get("models", {}).items()
    }
    staged = sum(sum(model["rows"].values()) for model in models.values())
    written = staged + sum(result.get("monitoring_rows", {}).values())
    detail = {"models": models, "timings": {"grants_s": grants_s, **result.get("timings", {})}}
    return StageOutcome(json.dumps(detail, separators=(",", ":"), default=str), written)


def _stage_publish(conn: warehouse.Connection, console: Console, run_id: int) -> StageOutcome:
    from gridcredit.publish import publish

    publication = publish(conn, run_id)
    if publication.leftovers_dropped:
        console.print(f"dropped leftovers of a killed dbt run: {', '.join(publication.leftovers_dropped)}")
    detail = f"switched in {', '.join(publication.schemas)}; ml rows inserted {publication.ml_rows_inserted}"
    console.print(f"[bold]published[/] {detail}")
    return StageOutcome(detail, sum(publication.ml_rows_inserted.values()))


# -- resuming after a failed or killed run -------------------------------------------------------
RESUMABLE_STAGES = ("dbt", "score", "dbt_after_scoring")


def code_fingerprint() -> str:
    """sha256 of the dbt project and ML code and configuration: a resumed stage must be the same work."""
    roots = [settings.DBT_PROJECT_DIR / d for d in ("models", "macros", "seeds", "tests", "snapshots")]
    roots += [settings.DBT_PROJECT_DIR / "dbt_project.yml", settings.DBT_PROJECT_DIR / "selectors.yml"]
    roots += [settings.PROJECT_ROOT / "ml"]
    ml_config = os.environ.get("GRIDCREDIT_ML_CONFIG")
    if ml_config:
        roots.append(Path(ml_config))
    return _fingerprint(roots)


def dbt_code_fingerprint() -> str:
    """sha256 of what decides the rows dbt writes: models, macros, seeds (the policies), snapshots,
    dbt_project.yml (its vars) and selectors.yml; not the data tests, not the ML code (ADR 0095)."""
    roots = [settings.DBT_PROJECT_DIR / d for d in ("models", "macros", "seeds", "snapshots")]
    roots += [settings.DBT_PROJECT_DIR / "dbt_project.yml", settings.DBT_PROJECT_DIR / "selectors.yml"]
    # Docs blocks (.md) only describe: editing one must not cost a full rebuild.
    return _fingerprint(roots, suffixes=(".sql", ".yml", ".yaml", ".csv", ".py"))


def _fingerprint(roots: list[Path], suffixes: tuple[str, ...] = (".sql", ".yml", ".yaml", ".csv", ".py", ".md")) -> str:
    digest = hashlib.sha256()
    for root in roots:
        files = sorted(root.rglob("*")) if root.is_dir() else [root]
        for path in files:
            if path.is_file() and path.suffix in suffixes:
                digest.update(path.name.encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()


def resume_token(conn: warehouse.Connection, data: Path | None) -> dict:
    """What a resumed stage's work depends on: code, data folder, last load, last publication."""
    with warehouse.connect(conn, autocommit=True) as pg:

        def newest(table: str, column: str, where: str = "true"):
            if pg.execute("select to_regclass(%s)", [table]).fetchone()[0] is None:
                return None
            return pg.execute(f"select max({column}) from {table} where {where}").fetchone()[0]

        return {
            "code": code_fingerprint(),
            "dbt_code": dbt_code_fingerprint(),
            "data_dir": str(data.resolve()) if data else None,
            "last_load_id": newest("ops.load_ledger", "load_id", "status = 'loaded'"),
            "last_publication_id": newest("ops.publications", "publication_id"),
        }


def resumable_stages(conn: warehouse.Connection, run_id: int, token: dict) -> tuple[int | None, list[str]]:
    """The stages the previous run completed that this run may skip (its build area is intact).

    Only when the previous run failed (or was killed) with the same resume token: the same code
    and data folder, no load and no publication since. Stages count from ``dbt`` on, in order.
    Runs that died before the build stages (no token: killed in ingest or freshness) changed no
    build area and are looked past; a load they made changes the token, so nothing is resumed then.
    """
    with warehouse.connect(conn, autocommit=True) as pg:
        previous = pg.execute(
            "select run_id, status, resume_token from ops.pipeline_runs"
            " where run_id < %s and resume_token is not null order by run_id desc limit 1",
            [run_id],
        ).fetchone()
        if not previous or previous[1] != "failed" or previous[2] != token:
            return None, []
        done = {
            stage
            for stage, status in pg.execute(
                "select stage, status from ops.pipeline_stage_runs where run_id = %s", [previous[0]]
            ).fetchall()
            if status == "succeeded"
        }
    skip = []
    for stage in RESUMABLE_STAGES:
        if stage not in done:
            break
        skip.append(stage)
    return previous[0], skip


def _summary(conn: warehouse.Connection) -> list[tuple[str, int]]:
    """Row counts of the published schemas, for the closing summary."""
    with warehouse.connect(conn) as pg:
        rows = pg.execute(
            """
            select table_schema || '.' || table_name
            from information_schema.tables
            where table_schema ~ %s
            order by 1
            """,
            [PUBLISHED_SCHEMAS_SQL],
        ).fetchall()
        counts = []
        for (name,) in rows:
            schema, table = name.split(".", 1)
            count = pg.execute(f'select count(*) from "{schema}"."{table}"').fetchone()[0]
            counts.append((name, count))
    return counts


def run_pipeline(
    conn: warehouse.Connection,
    data: Path | None,
    encoding: str | None,
    console: Console,
    resume: bool = True,
    retrain: bool = False,
    full_refresh: bool = False,
) -> list[StageResult]:
    """Run every stage that exists; raise PipelineError naming the failed stage.

    ``retrain``: the score stage trains every model now instead of on its cadence (ADR 0035).
    ``full_refresh``: rebuild every dbt model from raw, whatever the ledger says (ADR 0095; a change
    of the dbt code is detected without it).
    """
    if data is not None and not (data / "manifest.json").exists():
        raise PipelineError(f"{data} holds no manifest.json: not an extract folder")
    ledger = RunLedger(conn, "run", data)
    # Roles, schemas and default privileges before the first stage: ingest works as the loader role,
    # dbt as the transformer, ML as the ml role, each reading what the one before it wrote (ADR 0080).
    from gridcredit import access

    if any(access.stage_role(stage) for stage in access.STAGE_ROLES):
        access.apply(conn)
    stages: list[tuple[str, Callable[[], str | StageOutcome]]] = []
    # Fixed once ingest is done (refresh_plan, tests_changed_after_load), read by the dbt stages.
    build: dict = {"refresh": INCREMENTAL, "tests_after": None}
    on_spark = spark.engine() == "spark"
    if data is not None:
        stages.append(("ingest", lambda: _stage_ingest(conn, data, encoding, console)))
    if on_spark:
        # docs/SPARK.md: the raw layer goes to Spark and dbt builds there, in place. Write-audit-publish,
        # the ML step and the marts after it are PostgreSQL-only.
        stages.append(("spark_sync", lambda: _stage_spark_sync(conn, console)))
        stages.append(("dbt", lambda: _stage_dbt(conn, console, DBT_ON_SPARK, "dbt")))
        console.print("[yellow]engine spark: write-audit-publish and the ML step run on PostgreSQL only; not run[/]")
    else:
        stages.append(("freshness", lambda: _stage_freshness(conn, console)))
        stages.append(
            (
                "dbt",
                lambda: _stage_dbt(conn, console, DBT_BEFORE_SCORING, "dbt", build["tests_after"], build["refresh"]),
            )
        )
        stages.append(("score", lambda: _stage_score(conn, console, retrain)))
        stages.append(
            (
                "dbt_after_scoring",
                lambda: _stage_dbt(
                    conn, console, DBT_AFTER_SCORING, "dbt_after_scoring", build["tests_after"], build["refresh"]
                ),
            )
        )
        stages.append(("publish", lambda: _stage_publish(conn, console, ledger.run_id)))

    results: list[StageResult] = []
    skip: list[str] = []
    resumed_from: int | None = None
    for name, stage in stages:
        faults.fault_point("pipeline", name)
        if name == "dbt":
            # Ingest is done: what the build stages depend on is now fixed.
            token = resume_token(conn, data)
            ledger.record_resume_token(token)
            if not on_spark:
                plan = build["refresh"] = refresh_plan(conn, ledger.run_id, token, forced=full_refresh)
                if plan.mode == "full":
                    console.print(
                        f"[bold]full refresh[/]: {plan.reason}; every dbt model is rebuilt from raw"
                        " in the build area (published schemas stay as they are until the switch)"
                    )
                elif plan.mode == "copy_published":
                    console.print(f"[bold]build area replaced[/] by copies of the published marts: {plan.reason}")
            if build["refresh"].mode != "full":
                build["tests_after"] = tests_changed_after_load(conn, ledger.run_id, token)
            if build["tests_after"] is not None:
                console.print(
                    f"row-level tests read what changed after load {build['tests_after']}: the months rebuilt"
                    " since, the rows of later loads in raw and staging tables, and the scored months rebuilt"
                    " since the last publication (the last two published runs ran this code and tested the"
                    " rest; ADR 0021, 0103, 0110)"
                )
            if resume:
                resumed_from, skip = resumable_stages(conn, ledger.run_id, token)
                if skip:
                    console.print(
                        f"[bold]resuming[/] after run {resumed_from}: its build area already holds"
                        f" {', '.join(skip)} (same code, data and loads; nothing published since)"
                    )
        ledger.stage_started(name)
        if name in skip:
            detail = f"resumed: completed by run {resumed_from}"
            ledger.stage_finished(name, "succeeded", 0.0, detail)
            results.append(StageResult(name, 0.0, detail))
            continue
        start = time.perf_counter()
        try:
            outcome = stage()
        except Exception as error:
            ledger.stage_finished(name, "failed", time.perf_counter() - start, str(error)[:4000])
            ledger.finish("failed", f"stage {name} failed")
            raise
        seconds = time.perf_counter() - start
        if not isinstance(outcome, StageOutcome):
            outcome = StageOutcome(outcome)
        ledger.stage_finished(name, "succeeded", seconds, outcome.detail[:8000], outcome.rows)
        results.append(StageResult(name, seconds, outcome.detail, outcome.rows))
        release_freed_memory()
    ledger.finish("succeeded")

    table = Table(title=f"gridcredit run {ledger.run_id}: done")
    table.add_column("stage")
    table.add_column("seconds", justify="right")
    table.add_column("rows written", justify="right")
    for result in results:
        table.add_row(result.stage, f"{result.seconds:.1f}", "" if result.rows is None else f"{result.rows:,}")
    console.print(table)
    counts = _summary(conn)
    if counts:
        marts = Table(title="published tables")
        marts.add_column("table")
        marts.add_column("rows", justify="right")
        for name, count in counts:
            marts.add_row(name, f"{count:,}")
        console.print(marts)
    console.print(
        f"Warehouse: {conn.masked_url} (`gridcredit warehouse url` prints the full URL for psql).\n"
        "Analysts: query the marts_* schemas; `make docs` builds the dbt docs site."
    )
    return results
