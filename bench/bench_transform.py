"""Transform benchmark (`make bench-transform`): what the dbt build costs, per size.

For each customer count: simulate `months - 1` months and the next month as an increment, load the
history into an empty database, then in one run measure

* the full `dbt build --selector before_scoring` (models + data tests, as the pipeline runs it) and
  the rows of every mart;
* one hand-written SQL statement (bench/customer_month_reference.sql) returning the customer-month
  mart's billing, arrears, aging and consumption columns straight from the raw tables, checked
  against the mart with EXCEPT both ways, and the time of the dbt models that build the
  customer-month (its lineage, from run_results) against that statement's time;
* loading the increment and the same dbt build again: its share of the full build.

Writes bench/results/transform-latest.json (and a dated copy). Figures, not tests: targets are
reported, not asserted. Usage::

    python bench/bench_transform.py --customers 10000 30000 100000 --months 36
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gridcredit import settings, warehouse  # noqa: E402
from gridcredit.cli import dbt_environment  # noqa: E402
from gridcredit.publish import PUBLISHED_MART_SCHEMAS_SQL  # noqa: E402

RESULTS = ROOT / "bench" / "results"
REFERENCE_SQL = ROOT / "bench" / "customer_month_reference.sql"
DBT = str(Path(sys.executable).with_name("dbt"))
COMPARED_COLUMNS = [
    "customer_id", "month_start_date", "billed_amount", "billed_kwh", "collected_amount",
    "receivable_balance_amount", "credit_balance_amount", "arrears_amount", "is_in_arrears",
    "days_past_due", "arrears_0_30_days_amount", "arrears_31_60_days_amount",
    "arrears_61_90_days_amount", "arrears_over_90_days_amount", "consumption_kwh", "reading_days",
    "zero_reading_days",
]


def dbt(conn: warehouse.Connection, target: Path, *args: str) -> tuple[float, dict]:
    from gridcredit import access

    access.apply(conn)  # dbt works as gridcredit_transformer: roles and grants first (ADR 0080)
    started = time.perf_counter()
    result = subprocess.run(
        [DBT, *args, "--target-path", str(target), "--log-path", str(target / "logs")],
        cwd=settings.DBT_PROJECT_DIR, env=dbt_environment(conn), capture_output=True, text=True,
    )
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"dbt {' '.join(args)} failed:\n{result.stdout[-6000:]}")
    run_results = target / "run_results.json"
    return seconds, json.loads(run_results.read_text()) if run_results.exists() else {}


def lineage_seconds(target: Path, run_results: dict, model: str) -> float:
    """Execution time of `model` and every model upstream of it in this run."""
    manifest = json.loads((target / "manifest.json").read_text())
    parents = manifest["parent_map"]
    todo, seen = [f"model.gridcredit.{model}"], set()
    while todo:
        node = todo.pop()
        if node in seen:
            continue
        seen.add(node)
        todo.extend(p for p in parents.get(node, []) if p.startswith("model."))
    return sum(r["execution_time"] for r in run_results["results"] if r["unique_id"] in seen)


def slowest_nodes(run_results: dict, count: int = 12) -> dict[str, float]:
    """Execution seconds of the slowest nodes of one dbt run (models and tests), slowest first."""
    timed = sorted(run_results.get("results", []), key=lambda r: r["execution_time"], reverse=True)
    return {r["unique_id"].split(".", 1)[1]: round(r["execution_time"], 1) for r in timed[:count]}


def mart_rows(conn: warehouse.Connection) -> dict[str, int]:
    with psycopg.connect(conn.url) as pg:
        tables = pg.execute(
            "select table_schema || '.' || table_name from information_schema.tables"
            " where table_schema ~ %s and table_type = 'BASE TABLE' order by 1",
            [PUBLISHED_MART_SCHEMAS_SQL],  # published marts only, not the `__build` areas
        ).fetchall()
        return {t: pg.execute(f"select count(*) from {t}").fetchone()[0] for t, in tables}


def hand_written(conn: warehouse.Connection) -> dict:
    statement = REFERENCE_SQL.read_text()
    columns = ", ".join(COMPARED_COLUMNS)
    with psycopg.connect(conn.url) as pg:
        started = time.perf_counter()
        pg.execute(f"create temporary table reference_rows as {statement}")
        seconds = time.perf_counter() - started
        mart_only, reference_only = pg.execute(
            f"select (select count(*) from (select {columns} from marts_core.fct_customer_months"
            f" except select {columns} from reference_rows) as a),"
            f" (select count(*) from (select {columns} from reference_rows"
            f" except select {columns} from marts_core.fct_customer_months) as b)"
        ).fetchone()
        rows = pg.execute("select count(*) from reference_rows").fetchone()[0]
    return {"seconds": round(seconds, 2), "rows": rows, "columns_compared": len(COMPARED_COLUMNS),
            "mart_rows_not_in_statement": mart_only, "statement_rows_not_in_mart": reference_only}


def bench_size(server: warehouse.Connection, customers: int, months: int, seed: int, work: Path) -> dict:
    from gridcredit.ingestion.loader import ingest_directory
    from gridcredit.ingestion.simulator import generate

    name = f"bench_transform_{customers}"
    admin = server.with_dbname("postgres")
    with psycopg.connect(admin.url, autocommit=True) as pg:
        pg.execute(f'drop database if exists "{name}" with (force)')
        pg.execute(f'create database "{name}"')
    conn = server.with_dbname(name)
    full, increment = work / f"full-{customers}", work / f"increment-{customers}"
    started = time.perf_counter()
    manifest = generate(full, customers=customers, months=months - 1, seed=seed)
    year, month = map(int, manifest["last_month"].split("-"))
    next_month = f"{year + month // 12:04d}-{month % 12 + 1:02d}"
    generate(increment, customers=customers, months=months, seed=seed, from_month=next_month)
    generate_seconds = time.perf_counter() - started
    started = time.perf_counter()
    ingest_directory(full, conn=conn)
    ingest_seconds = time.perf_counter() - started

    target = work / f"target-{customers}"
    dbt(conn, target, "seed")
    full_seconds, results = dbt(conn, target, "build", "--selector", "before_scoring")
    lineage = lineage_seconds(target, results, "fct_customer_months")
    reference = hand_written(conn)
    rows = mart_rows(conn)

    ingest_directory(increment, conn=conn)
    incremental_seconds, incremental_results = dbt(
        conn, work / f"target-{customers}-inc", "build", "--selector", "before_scoring")
    with psycopg.connect(admin.url, autocommit=True) as pg:
        pg.execute(f'drop database if exists "{name}" with (force)')
    return {
        "customers": customers,
        "months": months,
        "generate_seconds": round(generate_seconds, 1),
        "ingest_seconds": round(ingest_seconds, 1),
        "full_dbt_build_seconds": round(full_seconds, 1),
        "rows_per_mart": rows,
        "customer_month_lineage_model_seconds": round(lineage, 1),
        "hand_written_statement": reference,
        "lineage_to_statement_ratio": round(lineage / reference["seconds"], 2) if reference["seconds"] else None,
        "incremental_month_dbt_build_seconds": round(incremental_seconds, 1),
        "incremental_share_of_full_build": round(incremental_seconds / full_seconds, 3),
        "slowest_nodes_full_build": slowest_nodes(results),
        "slowest_nodes_incremental_month": slowest_nodes(incremental_results),
        "load_average_1_5_15_min": [round(x, 2) for x in os.getloadavg()],
    }


def git_commit() -> str | None:
    """HEAD of the checkout the figures were measured on (+dirty if the dbt project has changes)."""
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    if head.returncode != 0:
        return None
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "dbt_project"], cwd=ROOT,
                           capture_output=True, text=True).stdout.strip()
    return head.stdout.strip() + ("+dirty" if dirty else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, nargs="+", default=[10000, 30000, 100000])
    parser.add_argument("--months", type=int, default=36)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    server = warehouse.ensure_running()
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-transform-") as tmp:
        for customers in args.customers:
            print(f"== {customers:,} customers x {args.months} months", flush=True)
            run = bench_size(server, customers, args.months, args.seed, Path(tmp))
            print(json.dumps(run, indent=2), flush=True)
            runs.append(run)
    targets = {
        "lineage_at_most_3x_statement": all((r["lineage_to_statement_ratio"] or 0) <= 3 for r in runs),
        "incremental_month_at_most_15pct": all(r["incremental_share_of_full_build"] <= 0.15 for r in runs),
        "statement_matches_mart": all(r["hand_written_statement"]["mart_rows_not_in_statement"] == 0
                                      and r["hand_written_statement"]["statement_rows_not_in_mart"] == 0
                                      for r in runs),
    }
    if len(runs) > 1:
        first, last = runs[0], runs[-1]
        scale = last["customers"] / first["customers"]
        targets["full_build_growth_vs_customer_growth"] = round(
            (last["full_dbt_build_seconds"] / first["full_dbt_build_seconds"]) / scale, 2)
    report = {
        "benchmark": "transform",
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count()},
        "git_commit": git_commit(),
        "runs": runs,
        "targets": targets,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    text = json.dumps(report, indent=2) + "\n"
    (RESULTS / "transform-latest.json").write_text(text)
    (RESULTS / f"transform-{dt.date.today().isoformat()}.json").write_text(text)
    print(json.dumps(targets, indent=2))


if __name__ == "__main__":
    main()
