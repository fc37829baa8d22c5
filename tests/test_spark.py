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


def test_export_converts_write_back_types_and_pseudonymises(fresh_database, tmp_path):
    """The export without a cluster (``run_sql`` only records the statements): the ML write-back's
    types (boolean, jsonb, timestamptz, numeric) reach Parquet, the pickled models stay behind, a
    customer's personal columns leave PostgreSQL masked, withheld and pseudonymised, and an export
    without the keys in the session is refused."""
    import pyarrow.parquet as pq

    from gridcredit.ingestion.loader import LEDGER_DDL

    key = bytes.fromhex(PSEUDONYM_KEY)
    person_id, phone = "11010519491231002X", "13812345678"
    with psycopg.connect(fresh_database.url, options=privacy.pg_options(key), autocommit=True) as pg:
        pg.execute(LEDGER_DDL)
        pg.execute(
            "insert into ops.load_ledger (system, table_name, file_path, status, started_at, last_month)"
            " values ('billing', 'customers', 'x.csv', 'loaded', now(), '2024-03')"
        )
        pg.execute(
            "create schema raw_billing; create table raw_billing.customers (customer_id text, customer_kind text,"
            " customer_name text, id_number text, phone text, address text, email text, _load_id bigint,"
            " _line_number bigint)"
        )
        pg.execute(
            "insert into raw_billing.customers values ('C1', 'person', '张伟', %s, %s, '北京市某路1号', '', 1, 1),"
            " ('C2', 'person', null, 'purged:abc', null, null, null, 1, 2)",
            [person_id, phone],
        )
        pg.execute(
            "create schema ml; create table ml.probe (flag boolean, params jsonb, at timestamptz,"
            " amount numeric(12, 3), share double precision); create table ml.model_artifacts (artifact bytea);"
            """ insert into ml.probe values (true, '{"a": 1}', '2024-03-01 10:00+08', 1.5, 0.25),"""
            " (false, null, null, null, null)"
        )
        statements: list[str] = []
        written = spark.export_to_spark(pg, statements.append, tmp_path, progress=lambda line: None)
    assert {name: rows for name, rows in written.items() if rows} == {
        "ops.load_ledger": 1,
        "raw_billing.customers": 2,
        "ml.probe": 2,
    }
    assert "ml.model_artifacts" not in written
    probe = pq.read_table(tmp_path / "ml" / "probe").to_pylist()
    assert [row["flag"] for row in probe] == [True, False] and probe[0]["params"] == '{"a": 1}'
    assert str(probe[0]["at"]) == "2024-03-01 02:00:00" and str(probe[0]["amount"]) == "1.500"
    (exported,) = (tmp_path / "raw_billing" / "customers").rglob("*.parquet")
    assert exported.parent.name == "_load_month=2024-03"  # the delivery month of its load
    customers = {row["customer_id"]: row for row in pq.read_table(exported).to_pylist()}
    assert customers["C1"]["id_number"] == "******1949******2*"  # birth year and sex digit only
    assert customers["C1"]["id_number_pseudonym"] == privacy.pseudonym(person_id, key)
    assert [customers["C1"][c] for c in ("customer_name", "phone", "address", "email")] == ["(withheld)"] * 3 + [""]
    assert customers["C2"]["id_number_pseudonym"] == "abc" and customers["C2"]["phone"] is None
    assert any("`id_number_pseudonym` string" in statement for statement in statements)
    with psycopg.connect(fresh_database.url) as pg, pytest.raises(spark.SparkError, match="pseudonym keys"):
        spark.export_to_spark(pg, statements.append, tmp_path / "again", progress=lambda line: None)


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
            # With the keys, as `gridcredit spark sync`: personal columns are pseudonymised in PostgreSQL.
            with psycopg.connect(conn.url, options=privacy.pg_options()) as pg, spark.connect(endpoint) as cursor:
                spark.export_to_spark(pg, cursor.execute, spark.raw_location(home), progress=print)
            timings["export_s"] = round(time.monotonic() - started, 1)
            patch.setenv("GRIDCREDIT_DBT_TARGET", "spark")
            spark_env = dbt_environment(conn)
            spark_env.update(endpoint.dbt_env())
            started = time.monotonic()
            _dbt(spark_env, base / "dbt-spark", *BUILD_ALL)
            timings["spark_dbt_s"] = round(time.monotonic() - started, 1)
            print("timings (s):", timings)
            yield {
                "conn": conn,
                "endpoint": endpoint,
                "base": base,
                "home": home,
                "cluster": cluster,
                "spark_env": spark_env,
            }
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


def test_export_pseudonymises_every_personal_column_of_the_contract():
    """Every ``personal: true`` column of ingestion/contract.yaml leaves PostgreSQL pseudonymised or withheld."""
    from gridcredit.ingestion.contract import load_contract

    personal = {
        (spec.raw_schema, spec.name, column.name)
        for spec in load_contract().tables
        for column in spec.columns
        if column.personal
    }
    assert len(personal) >= 8
    for schema, table, column in personal:
        outputs = dict(spark._exported_columns(schema, table, [column, "_load_id"]))
        assert outputs["_load_id"] == 'raw."_load_id"'
        assert outputs[column] != f'raw."{column}"', f"{schema}.{table}.{column} would leave in clear"
        if spark.personal_columns(schema, table)[column] == "pseudonymised":
            assert "current_setting('gridcredit.pseudonym_ikey')" in outputs[column + spark.PSEUDONYM_SUFFIX]


def _clear_personal_values(pg) -> set[str]:
    """Every clear personal value of the raw layer (contract columns marked personal), except
    organisations' names and credit codes (USCC), which the registry holds as business data
    (enterprise_name, uscc)."""
    values: set[str] = set()
    for schema, table in pg.execute(
        "select table_schema, table_name from information_schema.tables where table_schema like 'raw\\_%'"
    ).fetchall():
        for column in spark.personal_columns(schema, table):
            by_person = (table, column) in (("customers", "customer_name"), ("customers", "id_number"))
            person_only = " and customer_kind = 'person'" if by_person else ""
            values.update(
                value
                for (value,) in pg.execute(
                    f'select distinct "{column}" from "{schema}"."{table}" '
                    f"where coalesce(\"{column}\", '') <> '' and \"{column}\" not like 'purged:%%'{person_only}"
                ).fetchall()
            )
    return values


def _spark_string_cells(folders: list[Path]) -> dict[str, set[str]]:
    """Distinct string values of every column of every Parquet file under the folders (the cluster's
    warehouse: seeds, models; the exported raw layer), by file/column."""
    import pyarrow.parquet as pq

    cells: dict[str, set[str]] = {}
    for folder in folders:
        for path in folder.rglob("*.parquet"):
            table = pq.read_table(path)
            for name, column in zip(table.column_names, table.columns, strict=True):
                if str(column.type) in ("string", "large_string"):
                    cells[f"{path.relative_to(folder)}:{name}"] = {v for v in column.to_pylist() if v}
    return cells


def test_no_clear_personal_value_or_key_reaches_spark(engines):
    """Clear personal values stay in PostgreSQL: Spark's tables (raw export, seeds, models) hold none,
    only masked values and the pseudonyms PostgreSQL computed, which equal Python's hmac. The key never
    reaches Spark: not in the dbt environment of the Spark target, not in the error of a statement that
    fails to parse, and in no file dbt or the cluster wrote."""
    key = bytes.fromhex(PSEUDONYM_KEY)
    secrets = [PSEUDONYM_KEY, *privacy.pg_options(key).replace("-c ", "").replace("=", " ").split()[1::2]]
    assert all(len(secret) == 128 for secret in secrets[1:])
    statement = "select customer_id, id_number_key from staging.stg_billing__customers"
    with spark.connect(engines["endpoint"]) as cursor:
        _, on_spark = spark.fetch_rows(cursor, statement)
    with psycopg.connect(engines["conn"].url, options=privacy.pg_options(key)) as pg:
        on_postgres = pg.execute(statement).fetchall()
        customer_id, id_number = pg.execute(
            "select customer_id, id_number from raw_billing.customers where id_number <> '' "
            "order by _load_id desc, _line_number desc limit 1"  # a latest delivery: the one staging keeps
        ).fetchone()
        clear = _clear_personal_values(pg)
    assert sorted(on_spark) == sorted(on_postgres) and len(on_spark) >= SPARK_CUSTOMERS
    assert dict(on_spark)[customer_id] == privacy.pseudonym(id_number, key)

    # The scan can find what it looks for: the raw layer in PostgreSQL holds clear IDs and phones.
    assert len(clear) > 2 * SPARK_CUSTOMERS
    assert {kind for value in clear for kind, _ in privacy.find_personal_values(value)} == {"resident_id", "phone"}
    spark_base = engines["home"] / "spark"
    cells = _spark_string_cells([spark_base / "warehouse", spark.raw_location(engines["home"])])
    exported_ids = next(v for k, v in cells.items() if "raw_billing/customers/" in k and k.endswith(":id_number"))
    assert len(exported_ids) >= SPARK_CUSTOMERS // 2 and all("*" in value for value in exported_ids)
    leaks = sorted(
        f"{where}: {privacy._mask(value)}"
        for where, values in cells.items()
        for value in values
        if value in clear or privacy.find_personal_values(value)
    )
    assert len(cells) > 100 and not leaks, f"clear personal values on Spark: {leaks[:10]}"

    # The Spark target's environment carries no key, and a statement that fails to parse (naming the
    # settings the key once travelled in) echoes none.
    spark_env = engines["spark_env"]
    assert not [name for name, value in spark_env.items() if any(secret in value for secret in secrets)]
    base = engines["base"]
    failed = subprocess.run(
        [
            DBT,
            "show",
            "--inline",
            "select '${gridcredit.pseudonym_ikey}' as k frm where",
            "--target-path",
            str(base / "dbt-spark"),
            "--log-path",
            str(base / "dbt-spark" / "logs"),
        ],
        cwd=settings.DBT_PROJECT_DIR,
        env=spark_env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = failed.stdout + failed.stderr
    assert failed.returncode != 0 and ("PARSE_SYNTAX_ERROR" in output or "Syntax error" in output), output[-3000:]
    assert not any(secret in output for secret in secrets)

    # dbt's files, the cluster's logs, Thrift operation logs, the metastore, the tables and the raw export.
    folders = [base / "dbt-spark", base / "dbt-pg"]
    folders += [spark_base / name for name in ("logs", "metastore_db", "warehouse", "raw")]
    scanned = 0
    for folder in folders:
        for path in folder.rglob("*"):
            if path.is_file() and path.stat().st_size < 200_000_000:
                text = path.read_bytes()
                scanned += 1
                assert not any(secret.encode() in text for secret in secrets), f"pseudonym key found in {path}"
    assert scanned > 10
    compiled = (base / "dbt-spark" / "compiled").rglob("stg_billing__customers.sql")
    assert any("deduplicated.id_number_pseudonym" in path.read_text() for path in compiled)


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
