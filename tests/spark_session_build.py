"""Build the dbt project on Spark in this process and print the marts' normalised rows (JSON).

Used by tests/test_spark.py in a subprocess (one JVM, torn down with the process): a local
SparkSession, the raw layer exported from the PostgreSQL database given by --pg-url
(gridcredit.spark.export_to_spark), then dbt (in-process dbtRunner, profile output `spark_session`,
which reuses this SparkSession) runs the given dbt arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import psycopg

from gridcredit import settings, spark


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pg-url", required=True)
    parser.add_argument("--base", type=Path, required=True, help="Folder for the metastore, warehouse and Parquet.")
    parser.add_argument("--dbt", action="append", required=True, help="One dbt command line (repeatable).")
    parser.add_argument("--tables", nargs="*", default=[], help="schema.table to dump after the build.")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    started = time.monotonic()
    session = spark.local_session(args.base)
    timings = {"session_s": round(time.monotonic() - started, 1)}
    started = time.monotonic()
    with psycopg.connect(args.pg_url) as pg:
        spark.export_to_spark(pg, session.sql, args.base / "raw", progress=lambda line: print(line, flush=True))
    timings["export_s"] = round(time.monotonic() - started, 1)

    from dbt.cli.main import dbtRunner

    os.environ["GRIDCREDIT_DBT_TARGET"] = "spark_session"
    os.environ["DBT_PROFILES_DIR"] = str(settings.DBT_PROJECT_DIR)
    os.chdir(settings.DBT_PROJECT_DIR)
    runner = dbtRunner()
    results = {}
    for command in args.dbt:
        started = time.monotonic()
        result = runner.invoke(
            [*command.split(), "--target-path", str(args.base / "target"), "--log-path", str(args.base / "logs")]
        )
        timings[command] = round(time.monotonic() - started, 1)
        if not result.success:
            print(f"dbt {command} failed: {result.exception}", flush=True)
            args.out.write_text(json.dumps({"failed": command, "timings": timings}))
            return 1
    for table in args.tables:
        rows = [tuple(row) for row in session.sql(f"select * from {table}").collect()]
        columns = session.table(table).columns
        results[table] = {"columns": columns, "rows": spark.normalised_rows(rows)}
    args.out.write_text(json.dumps({"tables": results, "timings": timings}))
    session.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
