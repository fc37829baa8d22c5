"""The Spark engine: the same dbt project on the local Spark cluster gives the same marts as PostgreSQL.

A small simulated utility (SPARK_CUSTOMERS x SPARK_MONTHS) is ingested into a database of its own on
the session's PostgreSQL and every model is built there by dbt (profile output `warehouse`). The same
validated raw layer is exported to Parquet (`gridcredit spark sync`'s code) on a local standalone
cluster (`gridcredit spark up`'s code: a master, two workers capped at 2 GiB, the Thrift server) and
every model is built there by dbt through the Thrift server (profile output `spark`), with the same
pseudonymisation key, which reaches Spark as session settings (never in SQL, target/ or logs).

Every table of every `marts*` schema must hold the same rows on both engines: rows normalised
(dates ISO, timestamps UTC, NULL kept) and sorted by all columns, compared row by row, numbers within
a relative tolerance of 1e-4 (PostgreSQL's numeric keeps ~20 digits in a division where Spark's
decimal keeps 6; float sums depend on the order of addition); the ordered checksum of each mart
(numbers rounded to 2 places) is printed for both engines. The marts that read the ML step's tables
build empty on both engines here (no scoring in this test): they prove that they build on Spark.

Superset reads the collections dashboard's marts from the same cluster (Hive/Spark SQL driver in
.venv-superset), checked through the chart data API.

The settings and pure helpers (engine switch, Thrift URLs, row normalisation) are checked without
a JVM.
"""

from __future__ import annotations

import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from gridcredit import bi, privacy, settings, spark, warehouse
from gridcredit.cli import dbt_environment

DBT = str(Path(sys.executable).with_name("dbt"))
SPARK_CUSTOMERS = 40
SPARK_MONTHS = 13
SPARK_SEED = 11
# One known key for both engines, so the leak check knows what to look for (32 bytes, hex).
PSEUDONYM_KEY = "7a" * 32
# Marts that must have rows on this data (the ones after scoring are empty without an ML run).
MARTS_WITH_ROWS = {
    "marts_core.dim_customers",
    "marts_core.dim_dates",
    "marts_core.fct_bills",
    "marts_core.fct_customer_months",
    "marts_core.fct_reconciliation_months",
    "marts_collections.fct_collection_segment_months",
    "marts_groups.dim_customer_groups",
    "marts_groups.bridge_customer_group_members",
    "marts_ml.fct_customer_month_features",
}
SUPERSET_DASHBOARD = "collections"
# Seeds and every model, in one dbt invocation (one parse); the data tests run elsewhere (test_dbt).
BUILD_ALL = ("build", "--exclude-resource-type", "test", "--exclude-resource-type", "unit_test")


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


# -- PostgreSQL and the local Spark cluster, same data -----------------------------------------------
def _dbt(env: dict[str, str], target: Path, *args: str) -> float:
    started = time.monotonic()
    result = subprocess.run(
        [DBT, *args, "--target-path", str(target), "--log-path", str(target / "logs")],
        cwd=settings.DBT_PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert result.returncode == 0, f"dbt {' '.join(args)}:\n{result.stdout[-6000:]}\n{result.stderr[-2000:]}"
    return round(time.monotonic() - started, 1)


@pytest.fixture(scope="module")
def engines(session_warehouse, tmp_path_factory):
    """The small utility built by dbt on PostgreSQL and on the local Spark cluster (left running for
    the tests of this module, stopped at the end)."""
    from gridcredit.ingestion.loader import ingest_directory
    from gridcredit.ingestion.simulator import generate

    base = tmp_path_factory.mktemp("spark-equivalence")
    home = base / "home"
    timings: dict[str, float] = {}
    generate(base / "extract", customers=SPARK_CUSTOMERS, months=SPARK_MONTHS, seed=SPARK_SEED)
    name = "spark_equivalence"
    admin = session_warehouse.with_dbname("postgres")
    with psycopg.connect(admin.url, autocommit=True) as pg:
        pg.execute(f'drop database if exists "{name}" with (force)')
        pg.execute(f'create database "{name}"')
    conn = session_warehouse.with_dbname(name)
    cluster = spark.LocalCluster(home)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GRIDCREDIT_HOME", str(home))
        patch.setenv(privacy.KEY_ENV, PSEUDONYM_KEY)
        patch.setenv("GRIDCREDIT_DBT_ROLE", "")  # roles are not what this compares
        patch.setenv("GRIDCREDIT_SPARK_PORT", "0")  # any free port (parallel sessions)
        for variable in ("GRIDCREDIT_ENGINE", "GRIDCREDIT_DBT_TARGET", "GRIDCREDIT_SPARK_THRIFT_URL"):
            patch.delenv(variable, raising=False)
        ingest_directory(base / "extract", conn=conn)
        pg_env = dbt_environment(conn)
        started = time.monotonic()
        _dbt(pg_env, base / "dbt-pg", *BUILD_ALL)
        timings["postgres_dbt_s"] = round(time.monotonic() - started, 1)
        try:
            started = time.monotonic()
            endpoint = cluster.up(progress=lambda line: print(line, flush=True))
            timings["cluster_up_s"] = round(time.monotonic() - started, 1)
            started = time.monotonic()
            with psycopg.connect(conn.url) as pg, spark.connect(endpoint) as cursor:
                spark.export_to_spark(pg, cursor.execute, spark.raw_location(home), progress=print)
            timings["export_s"] = round(time.monotonic() - started, 1)
            patch.setenv("GRIDCREDIT_DBT_TARGET", "spark")
            spark_env = dbt_environment(conn)
            spark_env.update(endpoint.dbt_env())
            started = time.monotonic()
            _dbt(spark_env, base / "dbt-spark", *BUILD_ALL)
            timings["spark_dbt_s"] = round(time.monotonic() - started, 1)
            print("timings (s):", timings)
            yield {"conn": conn, "endpoint": endpoint, "base": base, "home": home, "cluster": cluster}
        finally:
            cluster.down()
    with psycopg.connect(admin.url, autocommit=True) as pg:
        pg.execute(f'drop database if exists "{name}" with (force)')


def _mart_tables(conn: warehouse.Connection) -> list[tuple[str, str]]:
    with psycopg.connect(conn.url) as pg:
        return pg.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_schema like 'marts%' and table_schema not like '%\\_\\_build' order by 1, 2"
        ).fetchall()


def test_marts_equal_on_postgres_and_spark(engines):
    conn, endpoint = engines["conn"], engines["endpoint"]
    marts = _mart_tables(conn)
    assert {f"{schema}.{table}" for schema, table in marts} >= MARTS_WITH_ROWS
    failures, report = [], []
    with psycopg.connect(conn.url) as pg, spark.connect(endpoint) as cursor:
        for schema, table in marts:
            name = f"{schema}.{table}"
            pg_cursor = pg.execute(f'select * from "{schema}"."{table}"')
            columns = [column.name for column in pg_cursor.description]
            pg_rows = pg_cursor.fetchall()
            expected = spark.normalised_rows(pg_rows)
            spark_columns, spark_rows = spark.fetch_rows(
                cursor, f"select {', '.join(f'`{column}`' for column in columns)} from `{schema}`.`{table}`"
            )
            assert spark_columns == columns, f"{name}: columns differ"
            actual = spark.normalised_rows(spark_rows)
            if name in MARTS_WITH_ROWS:
                assert expected, f"{name}: no rows on PostgreSQL"
            differences = spark.rows_differences(expected, actual)
            report.append(
                f"{name}: {len(expected)} rows, {len(differences)} differ; ordered checksum postgres "
                f"{spark.rows_checksum(pg_rows)[:16]} spark {spark.rows_checksum(spark_rows)[:16]}"
            )
            if differences:
                failures.append(f"{name} (columns {columns}): first (postgres, spark): {differences[:2]}")
    print("\n".join(report))
    assert not failures, "\n".join(failures)


def test_pseudonym_key_reaches_spark_only_as_a_session_setting(engines):
    """Spark computes the same keyed pseudonyms as PostgreSQL and Python's hmac, and the key is in no file
    that dbt or the cluster wrote (target/, dbt logs, Spark logs, Thrift operation logs)."""
    key = bytes.fromhex(PSEUDONYM_KEY)
    secrets = [PSEUDONYM_KEY, *privacy.dbt_secret_env(key).values()]
    statement = "select customer_id, id_number_key from staging.stg_billing__customers"
    with spark.connect(engines["endpoint"]) as cursor:
        _, on_spark = spark.fetch_rows(cursor, statement)
    with psycopg.connect(engines["conn"].url, options=privacy.pg_options(key)) as pg:
        on_postgres = pg.execute(statement).fetchall()
        customer_id, id_number = pg.execute(
            "select customer_id, id_number from raw_billing.customers where id_number <> '' "
            "order by _load_id desc, _line_number desc limit 1"  # a latest delivery: the one staging keeps
        ).fetchone()
    assert sorted(on_spark) == sorted(on_postgres) and len(on_spark) >= SPARK_CUSTOMERS
    assert dict(on_spark)[customer_id] == privacy.pseudonym(id_number, key)
    base = engines["base"]
    spark_base = engines["home"] / "spark"
    # dbt's files, the cluster's logs, Thrift operation logs, the metastore (view texts) and the tables.
    folders = [base / "dbt-spark", base / "dbt-pg"]
    folders += [spark_base / name for name in ("logs", "metastore_db", "warehouse")]
    scanned = 0
    for folder in folders:
        for path in folder.rglob("*"):
            if path.is_file() and path.stat().st_size < 200_000_000:
                text = path.read_bytes()
                scanned += 1
                assert not any(secret.encode() in text for secret in secrets), f"pseudonym key found in {path}"
    assert scanned > 10
    compiled = (base / "dbt-spark" / "compiled").rglob("stg_billing__customers.sql")
    assert any("${gridcredit.pseudonym_ikey}" in path.read_text() for path in compiled)


def test_superset_reads_the_spark_marts(engines, tmp_path_factory):
    """The collections dashboard on the Spark engine: every chart answers through the chart data API
    (Superset's Hive/Spark SQL driver to the cluster's Thrift server), with the same total as PostgreSQL."""
    from conftest import free_port

    home = tmp_path_factory.mktemp("spark-bi-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GRIDCREDIT_HOME", str(home))
        patch.setenv("GRIDCREDIT_SUPERSET_PORT", str(free_port()))
        patch.setenv("GRIDCREDIT_SUPERSET_META_DB", "superset_meta_spark")
        patch.setenv("WAREHOUSE_URL", engines["conn"].url)
        try:
            bi.bi_up(engines["conn"])
            imported = bi.provision_spark(engines["endpoint"], (SUPERSET_DASHBOARD,))
            api = bi.client()
            databases = api.request("GET", "/api/v1/database/?q=(columns:!(id,database_name,backend))")["result"]
            assert {"database_name": bi.SPARK_DATABASE_NAME, "backend": "hive"}.items() <= next(
                db for db in databases if db["database_name"] == bi.SPARK_DATABASE_NAME
            ).items()
            dashboard = api.request("GET", f"/api/v1/dashboard/{SUPERSET_DASHBOARD}-spark")["result"]
            charts = api.request("GET", f"/api/v1/dashboard/{dashboard['id']}/charts")["result"]
            assert len(charts) == len(imported["charts"]) > 0
            answered = {}
            for chart in charts:
                result = api.request("GET", f"/api/v1/chart/{chart['id']}/data/")["result"]
                for query in result:
                    assert not query.get("error"), (chart["slice_name"], query.get("error"))
                    assert query["rowcount"] > 0, f"{chart['slice_name']}: no rows from Spark"
                answered[chart["slice_name"]] = result[0]
            print(f"{len(answered)} charts answered from Spark: {sorted(answered)}")
        finally:
            bi.bi_down()
