"""`gridcredit run`: every stage after generation, in order, with a run ledger.

Stages: ingest (when --data is given) -> dbt (seeds, models up to the feature mart, their tests)
-> score (ML models, published to `ml`) -> dbt_after_scoring (marts that use scores) -> summary.
Each run and stage is recorded in ``ops.pipeline_runs`` / ``ops.pipeline_stage_runs``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from gridcredit import settings, warehouse

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
"""


class PipelineError(RuntimeError):
    """A stage failed; the message says which and why."""


@dataclass
class StageResult:
    stage: str
    seconds: float
    detail: str


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

    def stage_started(self, stage: str) -> None:
        self.pg.execute("insert into ops.pipeline_stage_runs (run_id, stage) values (%s, %s)", [self.run_id, stage])

    def stage_finished(self, stage: str, status: str, seconds: float, detail: str) -> None:
        self.pg.execute(
            "update ops.pipeline_stage_runs set status = %s, finished_at = now(), duration_s = %s,"
            " detail = %s where run_id = %s and stage = %s",
            [status, seconds, detail, self.run_id, stage],
        )

    def finish(self, status: str, message: str | None = None) -> None:
        self.pg.execute(
            "update ops.pipeline_runs set status = %s, finished_at = now(), message = %s where run_id = %s",
            [status, message, self.run_id],
        )
        self.pg.close()


def _stage_ingest(conn: warehouse.Connection, data: Path, encoding: str | None, console: Console) -> str:
    from gridcredit.ingestion.loader import IngestError, ingest_directory

    try:
        summary = ingest_directory(data, conn=conn, encoding=encoding, console=console)
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
    return str(summary)


# dbt phases around the ML step (selectors in dbt_project/selectors.yml): seeds are configuration
# and load first; the ML step reads the feature mart built before it and its tables come back as
# dbt sources for the marts that use scores.
DBT_BEFORE_SCORING = [["seed"], ["build", "--selector", "before_scoring", "--exclude", "resource_type:seed"]]
DBT_AFTER_SCORING = [["build", "--selector", "after_scoring"]]


def _stage_dbt(conn: warehouse.Connection, console: Console, phases: list[list[str]]) -> str:
    from gridcredit.cli import run_dbt

    for args in phases:
        console.print(f"[bold]dbt {' '.join(args)}[/]")
        code = run_dbt(args, conn)
        if code != 0:
            raise PipelineError(
                f"`dbt {' '.join(args)}` failed (exit {code}); see its output above and "
                f"{settings.DBT_PROJECT_DIR / 'logs' / 'dbt.log'}"
            )
    return "; ".join(f"dbt {' '.join(args)}" for args in phases)


def _stage_score(conn: warehouse.Connection, console: Console) -> str:
    from gridcredit.ml.scoring import score_all

    result = score_all(conn, console)
    return str(result)[:2000]


def _summary(conn: warehouse.Connection) -> list[tuple[str, int]]:
    """Row counts of the published schemas, for the closing summary."""
    with warehouse.connect(conn) as pg:
        rows = pg.execute(
            """
            select table_schema || '.' || table_name
            from information_schema.tables
            where table_schema like 'marts%%' or table_schema in ('ml', 'reference')
            order by 1
            """
        ).fetchall()
        counts = []
        for (name,) in rows:
            schema, table = name.split(".", 1)
            count = pg.execute(f'select count(*) from "{schema}"."{table}"').fetchone()[0]
            counts.append((name, count))
    return counts


def run_pipeline(
    conn: warehouse.Connection, data: Path | None, encoding: str | None, console: Console
) -> list[StageResult]:
    """Run every stage that exists; raise PipelineError naming the failed stage."""
    stages: list[tuple[str, Callable[[], str]]] = []
    if data is not None:
        if not (data / "manifest.json").exists():
            raise PipelineError(f"{data} holds no manifest.json: not an extract folder")
        stages.append(("ingest", lambda: _stage_ingest(conn, data, encoding, console)))
    stages.append(("dbt", lambda: _stage_dbt(conn, console, DBT_BEFORE_SCORING)))
    stages.append(("score", lambda: _stage_score(conn, console)))
    stages.append(("dbt_after_scoring", lambda: _stage_dbt(conn, console, DBT_AFTER_SCORING)))

    ledger = RunLedger(conn, "run", data)
    results: list[StageResult] = []
    for name, stage in stages:
        ledger.stage_started(name)
        start = time.perf_counter()
        try:
            detail = stage()
        except Exception as error:
            ledger.stage_finished(name, "failed", time.perf_counter() - start, str(error)[:2000])
            ledger.finish("failed", f"stage {name} failed")
            raise
        seconds = time.perf_counter() - start
        ledger.stage_finished(name, "succeeded", seconds, detail[:2000])
        results.append(StageResult(name, seconds, detail))
    ledger.finish("succeeded")

    table = Table(title=f"gridcredit run {ledger.run_id}: done")
    table.add_column("stage")
    table.add_column("seconds", justify="right")
    for result in results:
        table.add_row(result.stage, f"{result.seconds:.1f}")
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
