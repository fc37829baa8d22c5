"""The Spark engine: the same dbt project built on Spark gives the same marts as on PostgreSQL.

A small simulated utility (SPARK_CUSTOMERS x SPARK_MONTHS) is ingested into a database of its own on
the session's PostgreSQL and built there by dbt (profile output `warehouse`). The same validated raw
layer is exported to Parquet and built by dbt on Spark in a subprocess (tests/spark_session_build.py:
a local SparkSession, dbt-spark's `session` method, one JVM that ends with the process). Each mart's
rows, normalised (dates ISO, NULL kept) and sorted by all columns, must be equal on both engines row
by row; numbers within a relative tolerance of 1e-4 (PostgreSQL's numeric keeps ~20 digits in a
division where Spark's decimal keeps 6).

The settings and pure helpers (engine switch, Thrift URLs, row normalisation) are checked without
a JVM.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from gridcredit import settings, spark, warehouse
from gridcredit.cli import dbt_environment

DBT = str(Path(sys.executable).with_name("dbt"))
SPARK_CUSTOMERS = 40
SPARK_MONTHS = 13
SPARK_SEED = 11
# The marts compared, built with everything upstream of them (`+mart`) on both engines.
SPARK_MARTS = [
    "marts_core.dim_customers",
    "marts_core.dim_dates",
    "marts_core.fct_bills",
    "marts_core.fct_customer_months",
    "marts_core.fct_reconciliation_months",
]
SELECTION = " ".join(f"+{table.split('.')[1]}" for table in SPARK_MARTS)


# -- without a JVM ---------------------------------------------------------------------------------
def test_engine_setting(monkeypatch):
    monkeypatch.delenv("GRIDCREDIT_ENGINE", raising=False)
    assert spark.engine() == settings.project_config().get("engine", "postgres") == "postgres"
    monkeypatch.setenv("GRIDCREDIT_ENGINE", "Spark")
    assert spark.engine() == "spark"
    monkeypatch.setenv("GRIDCREDIT_ENGINE", "trino")
    with pytest.raises(spark.SparkError, match="engine must be one of postgres, spark"):
        spark.engine()


def test_thrift_url():
    assert spark.parse_thrift_url("thrift://spark-gw.internal:10001") == spark.Endpoint("spark-gw.internal", 10001)
    assert spark.parse_thrift_url("thrift://10.0.0.5").port == 10000
    with pytest.raises(spark.SparkError, match="thrift://host:10000"):
        spark.parse_thrift_url("postgresql://x/y")


def test_spark_engine_without_endpoint_names_the_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("GRIDCREDIT_HOME", str(tmp_path))
    monkeypatch.delenv("GRIDCREDIT_SPARK_THRIFT_URL", raising=False)
    with pytest.raises(spark.SparkError, match="gridcredit spark up"):
        spark.current_endpoint()


def test_row_comparison_tolerance_and_order():
    rows = [(2, Decimal("0.123456789"), None), (1, 0.1 + 0.2, "a"), (1, Decimal("-0.00001"), "b")]
    assert spark.normalised_rows(rows) == [
        ["n:1", "n:-0.00001", "b"],
        ["n:1", "n:0.30000000000000004", "a"],
        ["n:2", "n:0.123456789", None],
    ]
    spark_like = [(1, Decimal("0.300000"), "a"), (1, Decimal("0.000000"), "b"), (2, Decimal("0.123457"), None)]
    assert spark.rows_differences(spark.normalised_rows(rows), spark.normalised_rows(spark_like)) == []
    off = [(1, Decimal("0.3002"), "a"), (1, Decimal("0"), "b"), (2, Decimal("0.123457"), None)]
    assert len(spark.rows_differences(spark.normalised_rows(rows), spark.normalised_rows(off))) == 1
    shorter = spark.normalised_rows(rows[:2])
    assert spark.rows_differences(spark.normalised_rows(rows), shorter) == [("3 rows", "2 rows")]
    assert spark.rows_checksum(rows) == spark.rows_checksum(spark_like)


# -- PostgreSQL and Spark, same data -----------------------------------------------------------------
def _run_dbt(conn: warehouse.Connection, target: Path, *args: str) -> None:
    env = dbt_environment(conn)
    result = subprocess.run(
        [DBT, *args, "--target-path", str(target), "--log-path", str(target / "logs")],
        cwd=settings.DBT_PROJECT_DIR, env=env, capture_output=True, text=True, timeout=1800,
    )
    assert result.returncode == 0, f"dbt {' '.join(args)}:\n{result.stdout[-6000:]}\n{result.stderr[-2000:]}"


@pytest.fixture(scope="module")
def postgres_build(session_warehouse, tmp_path_factory, request):
    """A database with the small utility ingested and the compared marts built on PostgreSQL."""
    from gridcredit.ingestion.loader import ingest_directory
    from gridcredit.ingestion.simulator import generate

    base = tmp_path_factory.mktemp("spark-equivalence")
    generate(base / "extract", customers=SPARK_CUSTOMERS, months=SPARK_MONTHS, seed=SPARK_SEED)
    name = "spark_equivalence"
    admin = session_warehouse.with_dbname("postgres")
    with psycopg.connect(admin.url, autocommit=True) as pg:
        pg.execute(f'drop database if exists "{name}" with (force)')
        pg.execute(f'create database "{name}"')
    conn = session_warehouse.with_dbname(name)
    ingest_directory(base / "extract", conn=conn)
    _run_dbt(conn, base / "dbt-pg", "seed")
    _run_dbt(conn, base / "dbt-pg", "run", "--select", *SELECTION.split())
    yield conn, base
    with psycopg.connect(admin.url, autocommit=True) as pg:
        pg.execute(f'drop database if exists "{name}" with (force)')


def test_marts_equal_on_postgres_and_spark(postgres_build):
    conn, base = postgres_build
    out = base / "spark-result.json"
    env = {key: value for key, value in os.environ.items() if not key.startswith("GRIDCREDIT_DBT_")}
    result = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("spark_session_build.py")),
         "--pg-url", conn.url, "--base", str(base / "spark"), "--out", str(out),
         "--dbt", "seed", "--dbt", f"run --select {SELECTION}", "--tables", *SPARK_MARTS],
        env=env, capture_output=True, text=True, timeout=1800,
    )
    assert result.returncode == 0, f"Spark build failed:\n{result.stdout[-8000:]}\n{result.stderr[-4000:]}"
    on_spark = json.loads(out.read_text())
    print("spark timings (s):", on_spark["timings"])
    failures = []
    with psycopg.connect(conn.url) as pg:
        for table in SPARK_MARTS:
            columns = on_spark["tables"][table]["columns"]
            pg_rows = pg.execute(f"select {', '.join(columns)} from {table}").fetchall()
            expected = spark.normalised_rows(pg_rows)
            actual = on_spark["tables"][table]["rows"]
            assert expected, f"{table}: no rows on PostgreSQL"
            differences = spark.rows_differences(expected, actual)
            print(f"{table}: {len(expected)} rows, {len(differences)} differ")
            if differences:
                failures.append(f"{table} (columns {columns}): first (postgres, spark): {differences[:2]}")
    assert not failures, "\n".join(failures)
