"""The ``gridcredit`` command line (typer): one entry point that orchestrates every stage."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Annotated

import psycopg
import typer
from rich.console import Console

from gridcredit import settings, warehouse
from gridcredit.locking import PipelineBusyError, pipeline_lock

console = Console(stderr=True, soft_wrap=True)
app = typer.Typer(
    help="gridcredit: customer credit risk warehouse for utilities and other businesses that bill on credit.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
warehouse_app = typer.Typer(
    help="Start, stop and inspect the warehouse (embedded PostgreSQL or WAREHOUSE_URL).", no_args_is_help=True
)
app.add_typer(warehouse_app, name="warehouse")
spark_app = typer.Typer(
    help="Apache Spark engine: a local standalone cluster (up, down, status) and the raw-layer sync.",
    no_args_is_help=True,
)
app.add_typer(spark_app, name="spark")


def _mount_subcommands() -> None:
    """Stage commands that live beside their code (ml/, ...), mounted under one entry point."""
    from gridcredit.bi import app as bi_app
    from gridcredit.decisions.cli import export_app, override_app, policy_app, report_app
    from gridcredit.ml.cli import app as ml_app
    from gridcredit.ml.scorecard.cli import app as scorecard_app

    app.add_typer(scorecard_app, name="scorecard", help="Train an application scorecard on any labelled table.")
    # `score` and `validate` become top-level commands.
    app.add_typer(ml_app)
    app.add_typer(override_app, name="override")
    app.add_typer(export_app, name="export")
    app.add_typer(policy_app, name="policy")
    app.add_typer(report_app, name="report")
    app.add_typer(bi_app, name="bi", help="Superset dashboards: up, down, status, provision, credentials.")


_mount_subcommands()


def _fail(message: str, code: int = 1) -> typer.Exit:
    console.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


# -- warehouse ---------------------------------------------------------------------------------
@warehouse_app.command("start")
def warehouse_start() -> None:
    """Start the embedded warehouse (initialising it on first use)."""
    if warehouse.external_url():
        conn = warehouse.ensure_running()
        console.print(f"WAREHOUSE_URL is set: using {conn.masked_url}; nothing to start.")
        return
    try:
        conn = warehouse.EmbeddedServer().start()
    except warehouse.WarehouseError as error:
        raise _fail(str(error)) from error
    console.print(f"warehouse running at {conn.masked_url}")


@warehouse_app.command("stop")
def warehouse_stop() -> None:
    """Stop the embedded warehouse."""
    if warehouse.external_url():
        console.print("WAREHOUSE_URL is set: the external server is not ours to stop.")
        return
    stopped = warehouse.EmbeddedServer().stop()
    console.print("warehouse stopped" if stopped else "warehouse was not running")


@warehouse_app.command("status")
def warehouse_status() -> None:
    """Say whether the warehouse answers a real connection (exit 1 if not)."""
    conn = warehouse.current()
    try:
        with warehouse.connect(conn, connect_timeout=3) as pg:
            version = pg.execute("show server_version").fetchone()[0]
    except warehouse.WarehouseError as error:
        console.print(f"warehouse NOT reachable at {conn.masked_url}")
        raise typer.Exit(1) from error
    kind = "external (WAREHOUSE_URL)" if warehouse.external_url() else "embedded"
    console.print(f"warehouse up: {kind}, PostgreSQL {version}, {conn.masked_url}")


@warehouse_app.command("url")
def warehouse_url() -> None:
    """Print the warehouse URL, password included (for psql and scripts)."""
    typer.echo(warehouse.current().url)


@warehouse_app.command("init-sql")
def warehouse_init_sql(
    database: Annotated[str, typer.Option(help="Database to create and prepare.")] = warehouse.DATABASE,
    owner: Annotated[
        str, typer.Option(help="Role that runs the pipeline's owner connection (default privileges for it).")
    ] = warehouse.SUPERUSER,
) -> None:
    """Print the SQL a DBA runs (psql, as a superuser) to prepare an external PostgreSQL: database, roles,
    schemas, grants, default privileges."""
    from gridcredit import access

    typer.echo(access.init_sql(database, owner))


@warehouse_app.command("grants")
def warehouse_grants() -> None:
    """(Re)apply roles, grants, default privileges and row-level security now."""
    from gridcredit import access

    conn = warehouse.ensure_running()
    count = access.apply(conn)
    console.print(f"applied {count} access statements to {conn.masked_url}")


# -- spark -------------------------------------------------------------------------------------
@spark_app.command("up")
def spark_up() -> None:
    """Start the local Spark cluster (master, workers, Thrift server on 127.0.0.1)."""
    from gridcredit import spark

    config = spark.spark_settings()
    if config.thrift_url:
        console.print(f"spark.thrift_url is set ({config.thrift_url}): using that endpoint; nothing to start.")
        return
    try:
        endpoint = spark.LocalCluster().up(progress=console.print)
    except spark.SparkError as error:
        raise _fail(str(error)) from error
    console.print(f"spark thrift server at {endpoint.url}; `GRIDCREDIT_ENGINE=spark gridcredit dbt build` uses it")


@spark_app.command("down")
def spark_down() -> None:
    """Stop the local Spark cluster."""
    from gridcredit import spark

    stopped = spark.LocalCluster().down()
    console.print("spark cluster stopped" if stopped else "spark cluster was not running")


@spark_app.command("status")
def spark_status() -> None:
    """Say whether the Spark Thrift server answers a query (exit 1 if not)."""
    from gridcredit import spark

    try:
        endpoint = spark.current_endpoint()
    except spark.SparkError as error:
        console.print(str(error))
        raise typer.Exit(1) from error
    if not spark.answers(endpoint):
        console.print(f"spark thrift server NOT answering at {endpoint.url}")
        raise typer.Exit(1)
    cluster = spark.LocalCluster()
    kind = "external (spark.thrift_url)" if spark.spark_settings().thrift_url else "local cluster"
    console.print(f"spark up: {kind}, {endpoint.url}")
    for name, alive in cluster.processes().items():
        console.print(f"  {name}: {'running' if alive else 'NOT running'}")


@spark_app.command("sync")
def spark_sync() -> None:
    """Export the validated raw layer (+ load ledger, ml.*) from PostgreSQL to Parquet tables in Spark."""
    from gridcredit import privacy, spark

    conn = warehouse.ensure_running()
    try:
        endpoint = spark.current_endpoint()
        # With the pseudonym keys: personal columns are pseudonymised before they leave PostgreSQL.
        with warehouse.connect(conn, options=privacy.pg_options()) as pg, spark.connect(endpoint) as cursor:
            spark.export_to_spark(pg, cursor.execute, spark.raw_location(), progress=console.print)
    except spark.SparkError as error:
        raise _fail(str(error)) from error


# -- dbt ---------------------------------------------------------------------------------------
def dbt_role() -> str:
    """The role dbt works as (`set role`); empty = the login role (gridcredit.yaml access.dbt_role)."""
    from gridcredit import access

    return access.stage_role("dbt")


def dbt_environment(conn: warehouse.Connection) -> dict[str, str]:
    from gridcredit import privacy

    env = dict(os.environ)
    env.update(conn.dbt_env())
    env["GRIDCREDIT_DBT_ROLE"] = dbt_role()
    from gridcredit import spark

    if spark.engine() == "spark" and "GRIDCREDIT_DBT_TARGET" not in os.environ:
        env.update(spark.current_endpoint().dbt_env())
    if not env.get("GRIDCREDIT_DBT_TARGET", "").startswith("spark"):
        # The pseudonymisation key reaches dbt's sessions only as libpq options: never in SQL or target/.
        # Not on Spark: there the raw export carries pseudonyms computed by PostgreSQL (ADR 0093).
        env["PGOPTIONS"] = f"{env.get('PGOPTIONS', '')} {privacy.pg_options()}".strip()
    else:
        env.pop(privacy.KEY_ENV, None)
    env["DBT_PROFILES_DIR"] = str(settings.DBT_PROJECT_DIR)
    env["DBT_PROJECT_DIR"] = str(settings.DBT_PROJECT_DIR)
    env.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    # A dbt killed mid-statement must not leave its server backend working on: the server checks
    # every 2 s that the client is still there and cancels the statement otherwise.
    options = env.get("PGOPTIONS", "")
    if "client_connection_check_interval" not in options:
        env["PGOPTIONS"] = f"{options} -c client_connection_check_interval=2000".strip()
    return env


def run_dbt(args: list[str], conn: warehouse.Connection | None = None) -> int:
    conn = conn or warehouse.current()
    # Before: dbt's role needs its grants on what ingest and ML wrote since. After: tables dbt rebuilt
    # get their row-level security and analyst grants back (until then analysts cannot read them).
    if dbt_role():
        _reapply_access(conn)
    from gridcredit import dbt_child

    code = subprocess.call([*dbt_child.command(), *args], cwd=settings.DBT_PROJECT_DIR, env=dbt_environment(conn))
    if dbt_role():
        _reapply_access(conn)
    return code


def _reapply_access(conn: warehouse.Connection) -> None:
    """Roles and grants before a stage works as its role (new raw/ml tables since the last run)."""
    from gridcredit import access

    try:
        access.apply(conn)
    except psycopg.errors.InsufficientPrivilege as error:
        console.print(
            f"[yellow]warning:[/] cannot (re)apply roles and grants as {conn.user} ({error}); a DBA must run "
            "`gridcredit warehouse init-sql` and `gridcredit warehouse grants` as a superuser"
        )


@app.command("dbt", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def dbt_command(ctx: typer.Context) -> None:
    """Run dbt with the warehouse's profile, e.g. `gridcredit dbt build --select marts`."""
    conn = warehouse.ensure_running()
    raise typer.Exit(run_dbt(list(ctx.args), conn))


# -- generate ----------------------------------------------------------------------------------
@app.command("generate")
def generate_command(
    customers: Annotated[int, typer.Option(min=1, help="Number of customers.")] = 2000,
    months: Annotated[int, typer.Option(min=1, help="Months of history.")] = 24,
    seed: Annotated[int, typer.Option(help="Random seed: same seed and arguments give byte-identical files.")] = 42,
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("data/extract"),
    start_month: Annotated[str, typer.Option(help="First simulated month (YYYY-MM).")] = "2023-01",
    from_month: Annotated[
        str | None, typer.Option(help="Write only months from this one (YYYY-MM): an increment.")
    ] = None,
) -> None:
    """Generate realistic source-system extracts of a provincial utility (CSV + manifest)."""
    from gridcredit.ingestion.simulator import generate
    from gridcredit.progress import simulator_progress

    with simulator_progress(console) as progress:
        manifest = generate(
            out,
            customers=customers,
            months=months,
            seed=seed,
            start_month=start_month,
            from_month=from_month,
            progress=progress,
        )
    rows = sum(entry["rows"] for entry in manifest["files"].values())
    console.print(
        f"wrote {len(manifest['files'])} files, {rows:,} rows to {out} "
        f"({manifest['kind']}, {manifest['first_month']}..{manifest['last_month']})"
    )


# -- ingest ------------------------------------------------------------------------------------
@app.command("ingest")
def ingest_command(
    directory: Annotated[Path, typer.Argument(help="Extract folder holding manifest.json.")],
    encoding: Annotated[
        str | None,
        typer.Option(help="Extract encoding: utf-8, utf-8-sig, gb18030, gbk (default: manifest, else detect)."),
    ] = None,
) -> None:
    """Load an extract folder into the raw tables (validated, idempotent, crash-safe)."""
    from gridcredit.ingestion.loader import IngestError, ingest_directory

    conn = warehouse.ensure_running()
    try:
        with pipeline_lock("ingest", conn):
            # Roles and grants first: the loads work as the loader role (ADR 0080).
            _reapply_access(conn)
            ingest_directory(directory, conn=conn, encoding=encoding, console=console, work_as="ingest")
    except PipelineBusyError as error:
        raise _fail(str(error), 75) from error
    except IngestError as error:
        raise _fail(str(error), 2) from error


# -- privacy ---------------------------------------------------------------------------------
privacy_app = typer.Typer(help="Personal data: retention purge and the personal-data scanner.", no_args_is_help=True)
app.add_typer(privacy_app, name="privacy")


@privacy_app.command("purge")
def privacy_purge(
    closed_for: Annotated[
        str | None, typer.Option(help="Retention after close: 3y, 18m, 90d (default: gridcredit.yaml).")
    ] = None,
    as_of: Annotated[str | None, typer.Option(help="Reference date (YYYY-MM-DD); default today.")] = None,
    dry_run: Annotated[bool, typer.Option(help="Count only; change nothing.")] = False,
) -> None:
    """Remove the personal data of customers closed longer than the retention period, of their enterprises'
    legal representatives, and rejected raw lines holding it or older than the period (ops.privacy_purges)."""
    import datetime as dt

    from gridcredit import privacy

    period = closed_for or privacy.default_retention()
    conn = warehouse.ensure_running()
    try:
        today = dt.date.fromisoformat(as_of) if as_of else None
        with pipeline_lock("privacy purge", conn):
            result = privacy.purge(conn, period, today=today, dry_run=dry_run)
    except PipelineBusyError as error:
        raise _fail(str(error), 75) from error
    except (privacy.PrivacyError, ValueError) as error:
        raise _fail(str(error), 2) from error
    verb = "would purge" if dry_run else "purged"
    console.print(
        f"{verb} the personal data of {result.customers} customers closed before {result.closed_before} "
        f"(retention {period}) and of the legal representatives of {result.enterprises} enterprises: "
        f"{result.raw_rows_updated} raw rows cleared, {result.restricted_rows_deleted} restricted rows deleted, "
        f"{result.reject_lines_cleared} rejected raw lines cleared"
        + ("" if dry_run else "; logged in ops.privacy_purges")
    )


@privacy_app.command("scan")
def privacy_scan(
    schemas: Annotated[
        str, typer.Option(help="Regular expression of the schemas to scan.")
    ] = r"^(marts_.*|ml|reference|whatif|intermediate|decisions)$",
    files: Annotated[bool, typer.Option(help="Also scan dbt target/ and logs/.")] = True,
) -> None:
    """Look for resident ID numbers and mobile numbers in published tables and dbt files (exit 1 on a hit)."""
    from gridcredit import privacy

    conn = warehouse.ensure_running()
    with warehouse.connect(conn) as pg:
        hits = privacy.scan_database(pg, schemas)
    if files:
        hits += privacy.scan_files(
            [path for path in (settings.DBT_PROJECT_DIR / "target", settings.DBT_PROJECT_DIR / "logs") if path.exists()]
        )
    for hit in hits:
        console.print(f"{hit.kind:12} {hit.masked:20} {hit.where}", highlight=False)
    console.print(f"{len(hits)} personal-data pattern hits")
    raise typer.Exit(1 if hits else 0)


# -- run ---------------------------------------------------------------------------------------
@app.command("run")
def run_command(
    data: Annotated[Path | None, typer.Option(help="Ingest this extract folder first.")] = None,
    encoding: Annotated[str | None, typer.Option(help="Extract encoding for --data.")] = None,
    resume: Annotated[
        bool,
        typer.Option(
            help="After a failed or killed run, skip the build stages it completed when that is safe"
            " (same code, data and loads, nothing published since). --no-resume rebuilds everything."
        ),
    ] = True,
    retrain: Annotated[
        bool,
        typer.Option(
            help="Train a new version of every ML model in this run, whatever the retrain cadence says"
            " (ml/config.yaml discipline.retrain_every_months; the promotion gate still decides)."
        ),
    ] = False,
    full_refresh: Annotated[
        bool,
        typer.Option(
            help="Rebuild every dbt model from raw in this run (incremental models included). Not needed"
            " after an upgrade or a policy (seed) change: the run detects a change of the dbt code itself."
        ),
    ] = False,
) -> None:
    """Run the pipeline: ingest DIR when given, build and test in the build area, publish in one switch."""
    from gridcredit.pipeline import PipelineError, run_pipeline

    conn = warehouse.ensure_running()
    try:
        with pipeline_lock("run", conn):
            run_pipeline(
                conn,
                data=data,
                encoding=encoding,
                console=console,
                resume=resume,
                retrain=retrain,
                full_refresh=full_refresh,
            )
    except PipelineBusyError as error:
        raise _fail(str(error), 75) from error
    except PipelineError as error:
        raise _fail(str(error), 2) from error


def main() -> None:
    """The console entry point: a warehouse that cannot be reached or started is a one-line error
    (exit 1), from every command, not a traceback."""
    try:
        app()
    except warehouse.WarehouseError as error:
        console.print(f"[bold red]error:[/] {error}", highlight=False)
        raise SystemExit(1) from None


if __name__ == "__main__":  # pragma: no cover
    main()
