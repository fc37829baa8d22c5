"""The dbt project: unit tests, privacy of the marts, documentation, lint, incremental builds, leakage.

Everything reads the one pipeline build of the session (`built_warehouse`: simulator extract ->
`gridcredit ingest` -> dbt). Tests that change data work in a template clone of it
(`clone_database`), so the shared build stays untouched. All dbt unit tests run in one dbt
invocation. Every dbt call gets its own target and log folders, so tests never share dbt state
with each other or with a developer's `dbt_project/target`.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
import yaml
from conftest import clone_database, drop_database
from dateutil.relativedelta import relativedelta

from gridcredit import dbt_child, settings, warehouse
from gridcredit.cli import dbt_environment

DBT = str(Path(sys.executable).with_name("dbt"))
SQLFLUFF = str(Path(sys.executable).with_name("sqlfluff"))
PROJECT = settings.DBT_PROJECT_DIR
CONTRACT = settings.PROJECT_ROOT / "ingestion" / "contract.yaml"

# The models the incremental and leakage tests rebuild: the customer-month chain up to the features.
FEATURE_LINEAGE = "+fct_customer_month_features"
# The month-incremental models: the feature lineage, the collections by segment (ADR 0103) and the
# labels (ADR 0108).
INCREMENTAL_LINEAGE = f"{FEATURE_LINEAGE} +fct_collection_segment_months +fct_customer_month_labels"
INCREMENTAL_MARTS = [
    "marts_core.fct_customer_months",
    "marts_ml.fct_customer_month_labels",
    "intermediate.int_bills_sequenced",
    "intermediate.int_payments_allocated_to_bills",
    "intermediate.int_allocations_aggregated_to_customer_months",
    "marts_core.fct_customer_month_indicators",
    "marts_ml.fct_customer_month_features",
    "marts_collections.fct_collection_segment_months",
    "intermediate.int_readings_aggregated_to_customer_months",
    "intermediate.int_customer_months_spined",
    "intermediate.int_customer_months_receivables_aged",
    "intermediate.int_customer_months_consumption_compared",
    "intermediate.int_customer_months_events_cumulated",
    "staging.stg_metering__readings",
    "staging.stg_billing__bills",
    "staging.stg_billing__payments",
]
# Incremental after scoring (ADR 0098): rebuilt from the first month with a new load or new scores;
# the credit decision chain also from the first month whose overrides in force changed (ADR 0104).
# With their staging views: the pipeline's views read the ML step's build area (var ml_schema), these read `ml`.
SCORED_MODELS = (
    "stg_ml__credit_scores stg_ml__arrears_warnings stg_ml__theft_suspicion stg_ml__consumption_forecasts"
    " fct_customer_month_scores int_consumption_forecasts_pivoted"
    " int_customer_months_credit_history int_credit_decision_inputs_joined int_credit_overrides_in_force"
    " int_credit_override_months int_credit_list_statuses_evaluated int_credit_terms_recommended"
    " fct_credit_decisions fct_credit_decision_segments fct_consumption_forecast_accuracy"
    " fct_arrears_warning_segment_months fct_theft_suspicion_segment_months"
)
# The models incremental by scored month (each logs "rebuilding from"), then the other tables compared.
SCORED_INCREMENTAL = [
    "marts_ml.fct_customer_month_scores", "intermediate.int_consumption_forecasts_pivoted",
    "intermediate.int_credit_decision_inputs_joined", "intermediate.int_credit_list_statuses_evaluated",
    "intermediate.int_credit_terms_recommended", "marts_decisions.fct_credit_decisions",
    "marts_decisions.fct_credit_decision_segments", "marts_ml.fct_consumption_forecast_accuracy",
    "marts_ml.fct_arrears_warning_segment_months", "marts_ml.fct_theft_suspicion_segment_months",
]
SCORED_TABLES = [*SCORED_INCREMENTAL, "intermediate.int_customer_months_credit_history"]
SCORE_TABLES = ("credit_scores", "arrears_warnings", "theft_suspicion", "consumption_forecasts")


# The last private target per database: its saved parse goes into the next one, so the calls on one
# database parse the project once (~1 min each otherwise; dbt checks the copy is still valid).
PARSED_TARGETS: dict[str, Path] = {}


def run_dbt(
    conn: warehouse.Connection, tmp_path: Path, *args: str, timeout: int = 1800,
    env_extra: dict[str, str] | None = None, check: bool = True,
) -> str:
    """Run dbt (as `gridcredit` does, gridcredit/dbt_child.py) against `conn` with private target/log
    folders; fail the test with dbt's output (unless `check` is off: failing dbt tests expected)."""
    target = tmp_path / f"dbt-target-{len(list(tmp_path.glob('dbt-target-*')))}"
    parsed = PARSED_TARGETS.get(conn.dbname, Path("/nonexistent")) / "partial_parse.msgpack"
    if parsed.exists():
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy2(parsed, target)
    env = {**dbt_environment(conn), **(env_extra or {})}
    result = subprocess.run(
        [*dbt_child.command(), *args, "--target-path", str(target), "--log-path", str(target / "logs")],
        cwd=PROJECT, env=env, capture_output=True, text=True, timeout=timeout,
    )
    PARSED_TARGETS[conn.dbname] = target
    if result.returncode != 0 and check:
        pytest.fail(f"dbt {' '.join(args)} failed ({result.returncode}):\n"
                    f"{result.stdout[-8000:]}\n{result.stderr[-3000:]}")
    return result.stdout


def table_checksums(conn: warehouse.Connection, tables: list[str], where: str = "true") -> dict[str, str]:
    """md5 of each table's rows in a total order (all columns)."""
    sums = {}
    with psycopg.connect(conn.url) as pg:
        for table in tables:
            sums[table] = pg.execute(
                "select md5(coalesce(string_agg(row_text, E'\\n' order by row_text), ''))"
                f" from (select t::text as row_text from {table} as t where {where}) as rows"
            ).fetchone()[0]
    return sums


def dev_load_module():
    spec = importlib.util.spec_from_file_location("dev_load", PROJECT / "scripts" / "dev_load.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def latest_target(tmp_path: Path) -> Path:
    """The target folder of the latest `run_dbt` call of this test."""
    return max(tmp_path.glob("dbt-target-*"), key=lambda p: int(p.name.rsplit("-", 1)[1]))


def last_run_sql(tmp_path: Path, model: str) -> str:
    """The SQL dbt ran for `model` in the latest `run_dbt` call of this test."""
    return next((latest_target(tmp_path) / "run").rglob(f"{model}.sql")).read_text()


@pytest.fixture
def clone(built_warehouse):
    conn = clone_database(built_warehouse)
    yield conn
    drop_database(conn)


# -- logic -------------------------------------------------------------------------------------
def test_dbt_unit_tests_pass(built_warehouse, tmp_path):
    """Every dbt unit test (allocation cases, indicator formulas, control cases) in one invocation."""
    out = run_dbt(built_warehouse, tmp_path, "test", "--selector", "unit_tests_before_scoring")
    assert "PASS=" in out and " ERROR=0 " in out


def test_reconciliation_has_no_difference(built_warehouse):
    with psycopg.connect(built_warehouse.url) as pg:
        rows = pg.execute(
            "select measure, count(*), count(*) filter (where not is_reconciled)"
            " from marts_core.fct_reconciliation_months group by measure order by measure"
        ).fetchall()
    assert {measure for measure, _, _ in rows} == {"arrears", "billed", "collected", "net_receivable"}
    assert all(failed == 0 for _, _, failed in rows), rows


def test_reconciliation_starts_at_the_extract_manifests(built_warehouse):
    """Billed and collected per month run from the manifests' month totals (stored by ingest)
    through the raw tables to the marts: every month is checked against a manifest and agrees."""
    with psycopg.connect(built_warehouse.url) as pg:
        # months with anything delivered (the first month has no bills yet: issued the month after)
        rows = pg.execute(
            "select measure, count(*) filter (where raw_delivered_amount <> 0 or raw_amount <> 0),"
            " count(*) filter (where is_manifest_checked),"
            " count(*) filter (where manifest_difference_amount <> 0 or raw_amount <> extract_amount),"
            " sum(manifest_amount), sum(raw_delivered_amount)"
            " from marts_core.fct_reconciliation_months where measure in ('billed', 'collected')"
            " group by measure order by measure"
        ).fetchall()
        stored = pg.execute("select count(distinct load_id) from ops.manifest_month_totals").fetchone()[0]
    assert stored >= 4, "ingest stored no month totals of the manifests"
    for measure, months, checked, different, declared, delivered in rows:
        assert checked == months > 12, (measure, months, checked)
        assert different == 0 and declared == delivered != 0, (measure, different, declared, delivered)


def test_reconciliation_fails_on_a_manifest_difference(clone, tmp_path):
    """A month whose manifest declares 1.00 more than the raw table holds: the reconciliation mart
    shows the difference on that month and its test fails the build."""
    with psycopg.connect(clone.url) as pg:
        month = pg.execute(
            "update ops.manifest_month_totals set manifest_total = manifest_total + 1"
            " where (load_id, month) = (select totals.load_id, max(totals.month)"
            "   from ops.manifest_month_totals as totals join ops.load_ledger using (load_id)"
            "   where table_name = 'bills' group by totals.load_id order by totals.load_id limit 1)"
            " returning month"
        ).fetchone()[0]
        pg.commit()
    target = tmp_path / "dbt-target-reconciliation"
    result = subprocess.run(
        [DBT, "build", "--select", "int_extract_months_reconciled+", "--exclude", "tag:ml_scores",
         "--target-path", str(target), "--log-path", str(target / "logs")],
        cwd=PROJECT, env=dbt_environment(clone), capture_output=True, text=True, timeout=1800,
    )
    assert result.returncode != 0, "the reconciliation test passed with a manifest difference"
    assert "expression_is_true_fct_reconciliation_months" in result.stdout
    with psycopg.connect(clone.url) as pg:
        differing = pg.execute(
            "select to_char(month_start_date, 'YYYY-MM'), measure, manifest_difference_amount"
            " from marts_core.fct_reconciliation_months where not is_reconciled"
        ).fetchall()
    assert [(m, measure, float(d)) for m, measure, d in differing] == [(month, "billed", 1.0)]


def test_customer_month_has_one_row_per_customer_per_month(built_warehouse):
    with psycopg.connect(built_warehouse.url) as pg:
        duplicates, months, customers = pg.execute(
            "select count(*) - count(distinct (customer_id, month_start_date)),"
            " count(distinct month_start_date), count(distinct customer_id)"
            " from marts_core.fct_customer_months"
        ).fetchone()
        in_arrears = pg.execute(
            "select count(*) from marts_core.fct_customer_months where is_in_arrears"
        ).fetchone()[0]
    assert duplicates == 0 and months > 12 and customers > 100
    assert in_arrears > 0, "the simulated utility should have customers in arrears"


def test_month_rebuilt_models_are_indexed_by_customer_and_month(built_warehouse):
    """An incremental run joins one month of these models on (customer, month); with only the month
    index PostgreSQL looked each row up by scanning its whole month (ADR 0100)."""
    # the allocation is rebuilt by amount position, not by month (ADR 0112)
    month_rebuilt = [t for t in INCREMENTAL_MARTS
                     if not t.startswith("staging.") and t != "intermediate.int_payments_allocated_to_bills"]
    with psycopg.connect(built_warehouse.url) as pg:
        for table in month_rebuilt:
            schema, name = table.split(".")
            month = {"fct_customer_month_features": "as_of_month", "fct_customer_month_labels": "as_of_month",
                     "int_bills_sequenced": "due_month"}.get(name, "month_start_date")
            definitions = [
                row[0]
                for row in pg.execute(
                    "select indexdef from pg_indexes where schemaname = %s and tablename = %s", (schema, name)
                )
            ]
            # The segment aggregates have no customer: indexed by month alone (`customer_keyed=false`).
            key = month if name == "fct_collection_segment_months" else f"customer_id, {month}"
            assert any(d.endswith(f"({key})") for d in definitions), (table, definitions)


def test_incremental_models_find_their_newest_load_by_index(built_warehouse):
    """Every run starts by reading the newest `source_load_id` of each incremental model
    (reprocess_from_month); without an index that read the whole table: 88.5 s of the steady-state
    month at 100k (ADR 0109). Checked on every table holding the column (and in build areas, which a
    warehouse has from its second run on)."""
    small = {"int_load_ledger_months", "int_payment_reversals_reaching_back"}  # one row per month / reversal
    with psycopg.connect(built_warehouse.url) as pg:
        tables = pg.execute(
            "select columns.table_schema, columns.table_name,"
            " exists (select 1 from pg_indexes where pg_indexes.schemaname = columns.table_schema"
            "         and pg_indexes.tablename = columns.table_name and indexdef like '%(source_load_id)')"
            " from information_schema.columns"
            " join information_schema.tables using (table_schema, table_name)"
            " where columns.column_name = 'source_load_id' and tables.table_type = 'BASE TABLE'"
            " and (columns.table_schema = 'intermediate' or columns.table_schema like 'marts\\_%')"
        ).fetchall()
    checked = {(schema, name) for schema, name, _ in tables if name not in small}
    assert ("marts_decisions", "fct_credit_decisions") in checked and len(checked) >= 20, checked
    assert [(schema, name) for schema, name, indexed in tables if name not in small and not indexed] == []


# -- privacy and documentation -----------------------------------------------------------------
def personal_columns() -> set[str]:
    contract = yaml.safe_load(CONTRACT.read_text())
    return {
        column
        for system in contract["systems"].values()
        for table in system["tables"].values()
        for column, rules in table["columns"].items()
        if (rules or {}).get("personal")
    }


def test_no_personal_column_leaves_raw(built_warehouse):
    names = personal_columns()
    assert {"id_number", "customer_name", "phone"} <= names
    with psycopg.connect(built_warehouse.url) as pg:
        found = pg.execute(
            "select table_schema, table_name, column_name from information_schema.columns"
            " where (table_schema in ('staging', 'intermediate') or table_schema like 'marts%%')"
            " and column_name = any(%s)",
            [sorted(names)],
        ).fetchall()
    assert [row for row in found if row[2] in names] == []


def test_every_mart_model_and_column_is_described():
    missing = []
    for path in (PROJECT / "models" / "marts").rglob("_*__models.yml"):
        for model in yaml.safe_load(path.read_text()).get("models", []):
            if "grain" not in (model.get("description") or "").lower():
                missing.append(f"{model['name']}: description states no grain")
            for column in model.get("columns", []):
                if not (column.get("description") or "").strip():
                    missing.append(f"{model['name']}.{column['name']}")
    assert missing == []


def test_descriptions_are_persisted_for_bi(built_warehouse):
    with psycopg.connect(built_warehouse.url) as pg:
        table_comment, column_comment = pg.execute(
            "select obj_description('marts_core.fct_customer_months'::regclass),"
            " col_description('marts_core.fct_customer_months'::regclass, 1)"
        ).fetchone()
    assert "one row per customer per month" in table_comment.lower()
    assert column_comment


def test_docs_generate(built_warehouse, tmp_path):
    run_dbt(built_warehouse, tmp_path, "docs", "generate")
    target = next(tmp_path.glob("dbt-target-*"))
    catalog = json.loads((target / "catalog.json").read_text())
    assert "model.gridcredit.fct_customer_months" in catalog["nodes"]
    assert (target / "index.html").exists()


def test_source_freshness_from_load_ledger(built_warehouse, tmp_path):
    out = run_dbt(built_warehouse, tmp_path, "source", "freshness", "--select",
                  "source:billing", "source:metering", "source:ops")
    assert "PASS freshness of billing.bills" in out and "ERROR STALE" not in out


def test_sqlfluff_lint_clean(built_warehouse):
    """sqlfluff with the dbt templater (it compiles against the warehouse) finds nothing."""
    env = dbt_environment(built_warehouse)
    result = subprocess.run(
        [SQLFLUFF, "lint", "dbt_project/models", "dbt_project/macros", "dbt_project/tests",
         "--disable-progress-bar", "--nocolor"],
        cwd=settings.PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=1800,
    )
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-3000:]


def test_readings_key_is_held_by_the_database_and_its_test_can_fail(clone, tmp_path):
    """The readings key has a unique index (a duplicate cannot be inserted) and the uniqueness test
    skips its scan only while that index holds; without it the test groups the table and fails on a
    duplicate (docs/decisions/0018)."""
    duplicate = ("insert into staging.stg_metering__readings"
                 " select * from staging.stg_metering__readings order by meter_id, reading_date limit 1")
    with psycopg.connect(clone.url) as pg:
        with pytest.raises(psycopg.errors.UniqueViolation):
            pg.execute(duplicate)
        pg.rollback()
        index = pg.execute(
            "select indexrelid::regclass::text from pg_index"
            " where indrelid = 'staging.stg_metering__readings'::regclass and indisunique").fetchone()[0]
        pg.execute(f"drop index {index}")
        pg.execute(duplicate)
        pg.commit()
    target = tmp_path / "dbt-target-unique"
    result = subprocess.run(
        [DBT, "test", "--select", "stg_metering__readings,test_name:unique_combination_of_columns",
         "--target-path", str(target), "--log-path", str(target / "logs")],
        cwd=PROJECT, env=dbt_environment(clone), capture_output=True, text=True, timeout=600,
    )
    assert result.returncode != 0 and "FAIL 1 gridcredit_unique_combination_of_columns" in result.stdout, \
        result.stdout[-3000:]


def test_a_primary_key_is_held_by_the_database_and_its_unique_test_can_fail(clone, tmp_path):
    """The customer-month key has a unique index (a duplicate cannot be inserted), so dbt's `unique`
    test reads the catalogue; without the index it groups the table and fails on a duplicate
    (docs/decisions/0113)."""
    table = "marts_core.fct_customer_months"
    duplicate = f"insert into {table} select * from {table} order by customer_month_id limit 1"
    target = tmp_path / "dbt-target-unique"
    command = [DBT, "test", "--select", "fct_customer_months,test_name:unique",
               "--target-path", str(target), "--log-path", str(target / "logs")]
    with psycopg.connect(clone.url) as pg:
        with pytest.raises(psycopg.errors.UniqueViolation):
            pg.execute(duplicate)
        pg.rollback()
    held = subprocess.run(command, cwd=PROJECT, env=dbt_environment(clone), capture_output=True, text=True,
                          timeout=600)
    assert held.returncode == 0 and "PASS=1 " in held.stdout, held.stdout[-3000:]
    compiled = next((target / "compiled").rglob("unique_fct_customer_months_customer_month_id*.sql")).read_text()
    assert "pg_catalog.pg_index" in compiled
    with psycopg.connect(clone.url) as pg:
        index = pg.execute(
            "select indexrelid::regclass::text from pg_index where indrelid = %s::regclass and indisunique"
            " and indnkeyatts = 1", [table]).fetchone()[0]
        pg.execute(f"drop index {index}")
        pg.execute(duplicate)
        pg.commit()
    result = subprocess.run(command, cwd=PROJECT, env=dbt_environment(clone), capture_output=True, text=True,
                            timeout=600)
    assert result.returncode != 0 and "FAIL 1 unique_fct_customer_months_customer_month_id" in result.stdout, \
        result.stdout[-3000:]


# -- incremental builds ------------------------------------------------------------------------
def test_incremental_month_and_correction_equal_a_full_build(clone, pipeline_increment, tmp_path):
    """One more month, then a corrected re-delivery of an old bill: the incremental builds give the
    same rows as a full build, and a rerun with nothing new changes nothing."""
    from gridcredit.ingestion.loader import ingest_directory

    ingest_directory(pipeline_increment, conn=clone)
    run_dbt(clone, tmp_path, "run", "--select", INCREMENTAL_LINEAGE)
    # one new load per table: staged without the dedupe's sort (ADR 0099)
    assert "row_number()" not in last_run_sql(tmp_path, "stg_metering__readings")
    # the allocation is allocated again only from each customer's cut position (ADR 0112)
    compiled = next((latest_target(tmp_path) / "compiled").rglob("int_payments_allocated_to_bills.sql")).read_text()
    assert "from allocation_tail" in compiled
    after_month = table_checksums(clone, INCREMENTAL_MARTS)
    run_dbt(clone, tmp_path, "run", "--select", INCREMENTAL_LINEAGE)
    assert table_checksums(clone, INCREMENTAL_MARTS) == after_month, "a rerun with no new load changed rows"

    # A payment delivered before its customer (the payments extract ran ahead of the customer
    # master): when the customer comes, its first month counts that earlier payment, though the
    # payment's own month is not rebuilt then (ADR 0106).
    with psycopg.connect(clone.url) as pg:
        last_month = pg.execute(
            "select max(month_start_date) from intermediate.int_customer_months_spined").fetchone()[0]
        paid_month = f"{last_month - relativedelta(months=1):%Y-%m}"
        customer_columns = [c for c, in pg.execute(
            "select column_name from information_schema.columns where table_schema = 'raw_billing'"
            " and table_name = 'customers' and column_name not like '\\_%' order by ordinal_position")]
        late_customer = dict(zip(customer_columns, pg.execute(
            f"select {', '.join(customer_columns)} from raw_billing.customers"
            " where customer_kind = 'person' and close_date is null order by customer_id limit 1"
        ).fetchone(), strict=True))
        late_customer.update(customer_id="C199999999", open_date=f"{last_month:%Y-%m}-05")
        early_payment = {"payment_id": "P199999999999", "customer_id": "C199999999",
                         "paid_at": f"{paid_month}-20 10:00:00", "amount": "500.00", "channel": "counter"}
        dev_load_module().load_rows(pg, "billing", "payments", [early_payment],
                                    first_month=paid_month, last_month=paid_month, kind="correction")
        pg.commit()
    run_dbt(clone, tmp_path, "run", "--select", INCREMENTAL_LINEAGE)
    with psycopg.connect(clone.url) as pg:
        dev_load_module().load_rows(pg, "billing", "customers", [late_customer], first_month=f"{last_month:%Y-%m}",
                                    last_month=f"{last_month:%Y-%m}", kind="correction")
        pg.commit()
    out = run_dbt(clone, tmp_path, "run", "--select", INCREMENTAL_LINEAGE)
    assert f"reprocessing months from {last_month:%Y-%m-%d}" in out
    with psycopg.connect(clone.url) as pg:
        credited = pg.execute(
            "select month_start_date, credited_amount_to_date from intermediate.int_customer_months_receivables_aged"
            " where customer_id = 'C199999999'").fetchall()
    assert [(m, float(amount)) for m, amount in credited] == [(last_month, 500.0)]

    # A reversal re-allocates history (ADR 0014): the payment it reverses, months earlier, stops
    # paying its bills and later credits move up to them. The collections marts read that
    # allocation, so they rebuild from the reversed payment's month, not the reversal's (ADR 0107).
    reversed_month = f"{last_month - relativedelta(months=4):%Y-%m}"
    segments = ["marts_collections.fct_collection_segment_months"]
    before_reversal = f"month_start_date < '{last_month}'"
    segments_before = table_checksums(clone, segments, before_reversal)
    with psycopg.connect(clone.url) as pg:
        reversed_payment = pg.execute(
            "select payment_id, customer_id, amount, channel from raw_billing.payments as payment"
            " where reverses_payment_id is null and paid_at like %s and amount::numeric > 0"
            " and (select count(*) from raw_billing.payments as later where later.customer_id = payment.customer_id"
            "      and later.paid_at > payment.paid_at) >= 3"
            " order by payment_id limit 1", [f"{reversed_month}-%"]).fetchone()
        reversal = {"payment_id": "P199999999998", "customer_id": reversed_payment[1],
                    "paid_at": f"{last_month:%Y-%m}-25 09:00:00", "amount": f"-{reversed_payment[2]}",
                    "channel": reversed_payment[3], "reverses_payment_id": reversed_payment[0]}
        # ... and every payment another customer made from that month on: the customer's credits
        # past the allocation's cut vanish, so its old rows there must go with nothing in their place
        vanishing = pg.execute(
            "select payment_id, customer_id, amount, channel from raw_billing.payments"
            " where reverses_payment_id is null and amount::numeric > 0 and paid_at >= %s and customer_id = ("
            "   select min(customer_id) from raw_billing.payments where paid_at >= %s and customer_id <> %s)"
            " order by payment_id", [f"{reversed_month}-01", f"{reversed_month}-01", reversed_payment[1]]).fetchall()
        assert vanishing
        reversals = [reversal] + [
            {"payment_id": f"P1999999{number:05d}", "customer_id": customer,
             "paid_at": f"{last_month:%Y-%m}-26 09:00:00", "amount": f"-{amount}", "channel": channel,
             "reverses_payment_id": payment_id}
            for number, (payment_id, customer, amount, channel) in enumerate(vanishing)
        ]
        dev_load_module().load_rows(pg, "billing", "payments", reversals, first_month=f"{last_month:%Y-%m}",
                                    last_month=f"{last_month:%Y-%m}", kind="increment")
        pg.commit()
    out = run_dbt(clone, tmp_path, "run", "--select", INCREMENTAL_LINEAGE)
    assert f"fct_collection_segment_months: reprocessing months from {reversed_month}-01" in out
    assert f"int_allocations_aggregated_to_customer_months: reprocessing months from {reversed_month}-01" in out
    assert f"fct_customer_months: reprocessing months from {last_month:%Y-%m-%d}" in out
    assert table_checksums(clone, segments, before_reversal) != segments_before, "no earlier month re-allocated"
    # ... and those months carry the reversal's load: the build area's catch-up copies a month from the
    # published table only when its source_load_id is newer (ADR 0108)
    with psycopg.connect(clone.url) as pg:
        reversal_load = pg.execute(
            "select load_id from staging.stg_billing__payments where payment_id = %s", [reversal["payment_id"]]
        ).fetchone()[0]
        stamps = pg.execute(
            "select month_start_date, min(source_load_id), max(source_load_id)"
            " from marts_collections.fct_collection_segment_months where month_start_date >= %s group by 1",
            [f"{reversed_month}-01"]).fetchall()
    assert len(stamps) == 5 and all(low == high == reversal_load for _, low, high in stamps), stamps
    reversed_state = table_checksums(clone, INCREMENTAL_MARTS)
    run_dbt(clone, tmp_path, "run", "--select", INCREMENTAL_LINEAGE, "--full-refresh")
    assert table_checksums(clone, INCREMENTAL_MARTS) == reversed_state
    after_month = reversed_state

    # corrected re-delivery: an earlier bill comes again in a later load with another amount
    with psycopg.connect(clone.url) as pg:
        columns = [c for c, in pg.execute(
            "select column_name from information_schema.columns where table_schema = 'raw_billing'"
            " and table_name = 'bills' and column_name not like '\\_%' order by ordinal_position")]
        row = pg.execute(
            f"select {', '.join(columns)} from raw_billing.bills"
            " where bill_status = 'issued' and issue_date like '%-06-%' order by bill_id limit 1"
        ).fetchone()
        corrected = dict(zip(columns, row, strict=True))
        corrected["amount"] = f"{float(corrected['amount']) + 123.45:.2f}"
        month = corrected["issue_date"][:7]
        dev_load_module().load_rows(pg, "billing", "bills", [corrected], first_month=month, last_month=month,
                                    kind="correction")
        # ... and a reading of the same month: its staged version is replaced, not duplicated (the
        # delete bounded by the new rows' reading_date range still finds it, ADR 0103)
        reading_columns = [c for c, in pg.execute(
            "select column_name from information_schema.columns where table_schema = 'raw_metering'"
            " and table_name = 'readings' and column_name not like '\\_%' order by ordinal_position")]
        reading = dict(zip(reading_columns, pg.execute(
            f"select {', '.join(reading_columns)} from raw_metering.readings"
            " where reading_date like %s order by meter_id, reading_date limit 1", [f"{month}-1%"]
        ).fetchone(), strict=True))
        reading["kwh"] = f"{float(reading['kwh']) + 1000:.3f}"
        dev_load_module().load_rows(pg, "metering", "readings", [reading], first_month=month, last_month=month,
                                    kind="correction")
        pg.commit()
    out = run_dbt(clone, tmp_path, "run", "--select", INCREMENTAL_LINEAGE)
    assert f"reprocessing months from {month}-01" in out
    # the bills carry their running totals from the earlier due months, the labels rebuild the
    # as-of months whose windows reach the correction (ADR 0108)
    assert f"int_bills_sequenced: reprocessing months from {month}-01" in out
    assert f"fct_customer_month_labels: reprocessing months from {month}-01" in out
    assert f"between cast('{reading['reading_date']}' as date)" in last_run_sql(tmp_path, "stg_metering__readings")
    with psycopg.connect(clone.url) as pg:
        staged = pg.execute("select consumption_kwh from staging.stg_metering__readings"
                            " where meter_id = %s and reading_date = %s",
                            [reading["meter_id"], reading["reading_date"]]).fetchall()
    assert [float(kwh) for kwh, in staged] == [float(reading["kwh"])]
    incremental = table_checksums(clone, INCREMENTAL_MARTS)
    assert incremental != after_month, "the correction changed nothing"

    run_dbt(clone, tmp_path, "run", "--select", INCREMENTAL_LINEAGE, "--full-refresh")
    # a full build reads every load (the correction's bill twice): ranked, latest load wins
    assert "row_number()" in last_run_sql(tmp_path, "stg_billing__bills")
    assert table_checksums(clone, INCREMENTAL_MARTS) == incremental

    # The models built from scores (ADR 0098) rebuild from the first month with a new load (the
    # correction above; the forecasts read no load)...
    out = run_dbt(clone, tmp_path, "run", "--select", SCORED_MODELS)
    scores_log = "fct_customer_month_scores: months newly scored or scored again from"
    assert f"{scores_log} nowhere; rebuilding from {month}-01" in out
    built = table_checksums(clone, SCORED_TABLES)
    out = run_dbt(clone, tmp_path, "run", "--select", SCORED_MODELS)
    assert out.count("rebuilding from nowhere") == len(SCORED_INCREMENTAL)
    assert table_checksums(clone, SCORED_TABLES) == built, "a rerun with nothing new changed rows"
    # ... or with new scores: the ML step scores one more month and scores an earlier month again
    # (another grade, so the next month's `previous_final_grade` changes too).
    with psycopg.connect(clone.url) as pg:
        months = [m for m, in pg.execute("select distinct as_of_month from ml.credit_scores order by 1")]
        rescored, last = months[len(months) // 2], months[-1]
        for table in SCORE_TABLES:
            pg.execute(f"create temporary table new_month as select * from ml.{table} where as_of_month = %s", [last])
            pg.execute("update new_month set as_of_month = (as_of_month + interval '1 month')::date, scored_at = now()")
            pg.execute(f"insert into ml.{table} select * from new_month")
            pg.execute("drop table new_month")
        pg.execute(
            "update ml.credit_scores set scored_at = now(),"
            " final_grade = case when final_grade = 'A' then 'B' else 'A' end where as_of_month = %s",
            [rescored],
        )
        forecasts = pg.execute("select count(*) from ml.consumption_forecasts").fetchone()[0]
    out = run_dbt(clone, tmp_path, "run", "--select", SCORED_MODELS)
    decisions = [line for line in out.splitlines() if "rebuilding from" in line]
    expected = f"{scores_log} {rescored:%Y-%m-%d}; rebuilding from {rescored:%Y-%m-%d}"
    assert any(expected in d for d in decisions), decisions
    if forecasts:
        new_month = f"{last.year + last.month // 12:04d}-{last.month % 12 + 1:02d}-01"
        forecasts_log = f"int_consumption_forecasts_pivoted: months newly scored or scored again from {new_month}"
        assert any(forecasts_log in d for d in decisions), decisions
    decisions_log = f"fct_credit_decisions: months newly scored or scored again from {rescored:%Y-%m-%d}"
    assert any(decisions_log in d for d in decisions), decisions
    rescored_checksums = table_checksums(clone, SCORED_TABLES)
    assert rescored_checksums != built, "new scores changed nothing"
    # ... or with other overrides in force (ADR 0104): an analyst overrides a grade from an earlier month
    # and ends another override early; no load and no score marks either.
    from gridcredit.decisions.store import OverrideTerms, add_override, expire_override

    with psycopg.connect(clone.url, autocommit=True) as pg:
        customer, other = [c for c, in pg.execute(
            "select customer_id from marts_decisions.fct_credit_decisions where month_start_date = %s"
            " order by customer_id limit 2", [rescored])]
        add_override(pg, customer, OverrideTerms(final_grade="C"), "incremental test", months=3,
                     effective_from=rescored, created_by="tester")
        ended = add_override(pg, other, OverrideTerms(credit_period_days=20), "incremental test", months=24,
                             effective_from=months[1], created_by="tester")
    out = run_dbt(clone, tmp_path, "run", "--select", SCORED_MODELS)
    overrides_log = ("fct_credit_decisions: months newly scored or scored again from nowhere;"
                     f" overrides changed from {months[1]:%Y-%m-%d}")
    assert overrides_log in out, [line for line in out.splitlines() if "rebuilding from" in line]
    with psycopg.connect(clone.url, autocommit=True) as pg:
        expire_override(pg, ended, "incremental test", effective_from=rescored, created_by="tester")
    out = run_dbt(clone, tmp_path, "run", "--select", SCORED_MODELS)
    assert f"overrides changed from {months[1]:%Y-%m-%d}" in out  # its "until" date changed in every month
    with psycopg.connect(clone.url) as pg:
        customer_grade = pg.execute(
            "select decision_grade, grade_basis from marts_decisions.fct_credit_decisions"
            " where customer_id = %s and month_start_date = %s", [customer, rescored]).fetchone()
        other_periods = pg.execute(
            "select month_start_date < %s, bool_and(override_ids is not null) from marts_decisions.fct_credit_decisions"
            " where customer_id = %s and month_start_date >= %s group by 1 order by 1", [rescored, other, months[1]]
        ).fetchall()
    assert customer_grade == ("C", "override")
    assert other_periods == [(False, False), (True, True)], other_periods
    incremental = table_checksums(clone, SCORED_TABLES)
    assert incremental != rescored_checksums, "the overrides changed nothing"
    run_dbt(clone, tmp_path, "run", "--select", SCORED_MODELS, "--full-refresh")
    assert table_checksums(clone, SCORED_TABLES) == incremental


def failing_tests(clone, tmp_path, chosen, changed_after_load: int | None = None) -> set[str]:
    """The names of the `chosen` dbt tests that fail on `clone`, with the pipeline's test scope
    (GRIDCREDIT_TESTS_CHANGED_AFTER_LOAD_ID, ADR 0021/0103) set to `changed_after_load` or unset."""
    env = {} if changed_after_load is None else {"GRIDCREDIT_TESTS_CHANGED_AFTER_LOAD_ID": str(changed_after_load)}
    target = tmp_path / f"dbt-target-scope-{changed_after_load}"
    result = subprocess.run(
        [*dbt_child.command(), "test", "--select", *chosen,
         "--target-path", str(target), "--log-path", str(target / "logs")],
        cwd=PROJECT, env={**dbt_environment(clone), **env}, capture_output=True, text=True, timeout=900,
    )
    results = json.loads((target / "run_results.json").read_text())["results"]
    assert len(results) == len(chosen), result.stdout[-3000:]
    return {r["unique_id"].split(".")[2] for r in results if r["status"] == "fail"}


def test_changed_month_tests_read_only_rebuilt_months_and_still_fail(clone, tmp_path):
    """With GRIDCREDIT_TESTS_CHANGED_AFTER_LOAD_ID (what the pipeline sets, ADR 0021) a row-level test
    of a month-rebuilt model reads the months whose ledger load is newer, and fails on a bad row there;
    `unique` on one column still reads the whole table; without it every test reads every row."""
    with psycopg.connect(clone.url) as pg:
        first, last = pg.execute("select min(month_start_date), max(month_start_date)"
                                 " from marts_core.fct_customer_months").fetchone()
        # The last month comes from a newer load than any other (as after an increment).
        newest = pg.execute("select max(source_load_id) from intermediate.int_load_ledger_months").fetchone()[0]
        pg.execute("update intermediate.int_load_ledger_months set source_load_id = %s where month_start_date = %s",
                   [newest + 1, last])
        # Untouched month: a negative arrears amount and a duplicate row. Rebuilt month: a negative days past due.
        pg.execute("update marts_core.fct_customer_months set arrears_amount = -1 where customer_month_id ="
                   " (select min(customer_month_id) from marts_core.fct_customer_months where month_start_date = %s)",
                   [first])
        # the key's unique index refuses the duplicate (ADR 0113): without it, the tests must find it
        index = pg.execute(
            "select indexrelid::regclass::text from pg_index"
            " where indrelid = 'marts_core.fct_customer_months'::regclass and indisunique and indnkeyatts = 1"
        ).fetchone()[0]
        pg.execute(f"drop index {index}")
        pg.execute("insert into marts_core.fct_customer_months select * from marts_core.fct_customer_months"
                   " where month_start_date = %s order by customer_month_id limit 1 offset 1", [first])
        pg.execute("update marts_core.fct_customer_months set days_past_due = -1 where customer_month_id ="
                   " (select min(customer_month_id) from marts_core.fct_customer_months where month_start_date = %s)",
                   [last])
    chosen = {
        "gridcredit_sign_rule_fct_customer_months_arrears_amount__non_negative": "untouched month",
        "gridcredit_sign_rule_fct_customer_months_days_past_due__non_negative": "rebuilt month",
        "unique_fct_customer_months_customer_month_id": "whole table",
        "gridcredit_unique_combination_of_columns_fct_customer_months_customer_id__month_start_date": "untouched month",
    }

    scoped = failing_tests(clone, tmp_path, chosen, changed_after_load=newest)
    assert scoped == {name for name, where in chosen.items() if where != "untouched month"}
    assert failing_tests(clone, tmp_path, chosen) == set(chosen)


def publish(pg: psycopg.Connection) -> None:
    """Record a publication, as gridcredit/publish.py does at the end of a run that passed its tests."""
    pg.execute("insert into ops.publications (schemas, ml_rows_inserted) values ('{}', '{}')")


def test_scored_month_tests_read_the_months_rebuilt_since_the_last_publication(clone, tmp_path):
    """ADR 0110: with the pipeline's scope set, the row-level tests of a model incremental by scored
    month read the months that any build since the last publication rebuilt: a month rebuilt by a
    build that did not publish (a failed run) stays in the scope of the next build, which rebuilds
    nothing; a publication ends it; `unique` on one column reads the whole table; without the scope
    every test reads every row."""
    model = "marts_decisions.fct_credit_decisions"
    with psycopg.connect(clone.url, autocommit=True) as pg:
        first, last = pg.execute(f"select min(month_start_date), max(month_start_date) from {model}").fetchone()

        publish(pg)  # everything built so far was tested
        pg.execute(f"delete from {model} where month_start_date = %s", [last])
    # A build that rebuilds the last month and publishes nothing (as in a run that failed after it).
    run_dbt(clone, tmp_path, "run", "--select", "fct_credit_decisions")
    with psycopg.connect(clone.url, autocommit=True) as pg:
        rebuilt = pg.execute(
            "select rebuilt_from from intermediate.scored_month_rebuilds"
            " where model_unique_id = 'model.gridcredit.fct_credit_decisions' order by recorded_at desc limit 1"
        ).fetchone()
        assert rebuilt == (f"{last:%Y-%m-%d}",)
        # Untouched month: a negative arrears amount and a duplicate row. Rebuilt month: a negative deposit.
        pg.execute(f"update {model} set arrears_amount = -1 where credit_decision_id ="
                   f" (select min(credit_decision_id) from {model} where month_start_date = %s)", [first])
        pg.execute(f"insert into {model} select * from {model}"
                   " where month_start_date = %s order by credit_decision_id limit 1 offset 1", [first])
        pg.execute(f"update {model} set deposit_amount = -1 where credit_decision_id ="
                   f" (select min(credit_decision_id) from {model} where month_start_date = %s)", [last])
    chosen = {
        "gridcredit_sign_rule_fct_credit_decisions_arrears_amount__non_negative": "untouched month",
        "gridcredit_accepted_range_fct_credit_decisions_deposit_amount__0": "rebuilt month",
        "unique_fct_credit_decisions_credit_decision_id": "whole table",
        "gridcredit_unique_combination_of_columns_fct_credit_decisions_customer_id__month_start_date":
            "untouched month",
    }

    def failing(scoped: bool) -> set[str]:
        # The model and its tests in one invocation, as in the pipeline; the model rebuilds no month.
        run_dbt(clone, tmp_path, "build", "--select", "fct_credit_decisions", check=False,
                env_extra={"GRIDCREDIT_TESTS_CHANGED_AFTER_LOAD_ID": "0"} if scoped else {})
        results = json.loads((latest_target(tmp_path) / "run_results.json").read_text())["results"]
        assert any(r["unique_id"] == "model.gridcredit.fct_credit_decisions" and r["status"] == "success"
                   for r in results)
        return {r["unique_id"].split(".")[2] for r in results if r["status"] == "fail"} & set(chosen)

    assert failing(scoped=True) == {name for name, where in chosen.items() if where != "untouched month"}
    assert failing(scoped=False) == set(chosen)
    with psycopg.connect(clone.url, autocommit=True) as pg:
        publish(pg)  # as if a run had tested and published the rebuilt month
    assert failing(scoped=True) == {name for name, where in chosen.items() if where == "whole table"}
    # Four incremental builds of one table: its post-hook's partial index exists once, not once per
    # build (create_partial_index added one per run to this incremental model: ADR 0052, session 16).
    with psycopg.connect(clone.url) as pg:
        definitions = [row[0] for row in pg.execute(
            "select regexp_replace(indexdef, 'INDEX \\S+ ON', 'INDEX ON') from pg_indexes"
            " where schemaname = 'marts_decisions' and tablename = 'fct_credit_decisions'"
        ).fetchall()]
    assert any("WHERE" in definition for definition in definitions), definitions
    assert len(definitions) == len(set(definitions)), definitions


def test_tests_of_load_written_tables_read_only_newer_loads_and_still_fail(clone, tmp_path):
    """Raw tables and incremental staging tables are written load by load (ADR 0103): with
    GRIDCREDIT_TESTS_CHANGED_AFTER_LOAD_ID=N their row-level tests read the rows of loads after N, so
    a bad row of load L fails with N < L, passes with N = L (a run tested it), and fails without N."""
    with psycopg.connect(clone.url) as pg:
        readings_load = pg.execute(
            "select max(load_id) from ops.load_ledger"
            " where system = 'metering' and table_name = 'readings' and status = 'loaded'"
        ).fetchone()[0]
        pg.execute("update raw_metering.readings set meter_id = null"
                   " where ctid = (select min(ctid) from raw_metering.readings where _load_id = %s)", [readings_load])
        pg.execute("update staging.stg_metering__readings set reading_quality = 'bogus'"
                   " where ctid = (select min(ctid) from staging.stg_metering__readings where load_id = %s)",
                   [readings_load])
        bills_load = pg.execute("select max(load_id) from staging.stg_billing__bills").fetchone()[0]
        pg.execute("update staging.stg_billing__bills set billed_kwh = -1"
                   " where bill_id = (select min(bill_id) from staging.stg_billing__bills where load_id = %s)",
                   [bills_load])
    chosen = {
        "source_not_null_metering_readings_meter_id": readings_load,
        "accepted_values_stg_metering__readings_reading_quality__actual__estimated": readings_load,
        "gridcredit_sign_rule_stg_billing__bills_billed_kwh__non_negative": bills_load,
    }
    assert failing_tests(clone, tmp_path, chosen) == set(chosen)
    assert failing_tests(clone, tmp_path, chosen, changed_after_load=min(chosen.values()) - 1) == set(chosen)
    newest = max(chosen.values())
    assert failing_tests(clone, tmp_path, chosen, changed_after_load=newest) == set()


def test_tests_are_scoped_only_after_two_published_runs_of_the_same_code(fresh_database):
    """The pipeline scopes the tests (ADR 0021) only when the last two published runs ran the
    current code (the build area holds the state published one run before the last); the id is the
    last published run's newest load (ADR 0021)."""
    from gridcredit.pipeline import RunLedger, tests_changed_after_load

    def run(code: str, last_load: int, published: bool = True) -> int:
        ledger = RunLedger(fresh_database, "run", None)
        ledger.record_resume_token({"code": code, "last_load_id": last_load})
        for stage in ("dbt", "publish") if published else ("dbt",):
            ledger.stage_started(stage)
            ledger.stage_finished(stage, "succeeded", 0.0, "")
        ledger.finish("succeeded" if published else "failed")
        return ledger.run_id

    now = {"code": "B"}
    run("A", 1)
    assert tests_changed_after_load(fresh_database, 10**9, now) is None  # no run of this code
    run("B", 2)
    assert tests_changed_after_load(fresh_database, 10**9, now) is None  # one run of this code
    run("B", 3)
    assert tests_changed_after_load(fresh_database, 10**9, now) == 3
    run("B", 4, published=False)  # a failed run counts for nothing
    assert tests_changed_after_load(fresh_database, 10**9, now) == 3
    assert tests_changed_after_load(fresh_database, 10**9, {"code": "C"}) is None  # code changed


# -- no leakage into the features --------------------------------------------------------------
def test_later_payment_bill_or_reading_changes_no_earlier_feature_row(clone, tmp_path):
    """Append a payment, a bill and readings dated after month M as a new load, rebuild the features
    from scratch: every feature row up to M is unchanged (and the later rows did change)."""
    with psycopg.connect(clone.url) as pg:
        months = [m for m, in pg.execute(
            "select distinct as_of_month from marts_ml.fct_customer_month_features order by 1")]
        as_of = months[len(months) // 2]
        later = months[len(months) // 2 + 1]
        customer_id, meter_id = pg.execute(
            "select meters.customer_id, meters.meter_id from staging.stg_billing__meters as meters"
            " inner join marts_core.fct_customer_months as months using (customer_id)"
            " where months.month_start_date = %s and months.is_account_open and meters.remove_date is null"
            " order by months.arrears_amount desc, meters.meter_id limit 1",
            [later],
        ).fetchone()
    where = f"as_of_month <= date '{as_of}'"
    before = table_checksums(clone, ["marts_ml.fct_customer_month_features"], where)
    later_rows = table_checksums(clone, ["marts_ml.fct_customer_month_features"], f"as_of_month = date '{later}'")

    day = f"{later:%Y-%m}-15"
    loader = dev_load_module()
    with psycopg.connect(clone.url) as pg:
        loader.load_rows(pg, "billing", "payments", [{
            "payment_id": "P999999999901", "customer_id": customer_id, "paid_at": f"{day} 10:00:00",
            "amount": "5000.00", "channel": "online", "reverses_payment_id": None}],
            first_month=day[:7], last_month=day[:7], kind="test")
        loader.load_rows(pg, "billing", "bills", [{
            "bill_id": "B999999999901", "customer_id": customer_id, "billing_period": day[:7],
            "issue_date": day, "due_date": f"{later:%Y-%m}-16", "kwh": "100.00", "amount": "777.00",
            "tariff_code": None, "bill_status": "issued"}],
            first_month=day[:7], last_month=day[:7], kind="test")
        loader.load_rows(pg, "metering", "readings", [
            {"meter_id": meter_id, "reading_date": f"{later:%Y-%m}-{d:02d}", "kwh": "999.00", "quality": "actual"}
            for d in range(1, 29)],
            first_month=day[:7], last_month=day[:7], kind="test")
        # the bill needs the customer's tariff (a required column)
        pg.execute("update raw_billing.bills set tariff_code = (select tariff_code from staging.stg_billing__customers"
                   " where customer_id = %s) where bill_id = 'B999999999901'", [customer_id])
        pg.commit()

    run_dbt(clone, tmp_path, "run", "--select", FEATURE_LINEAGE, "--full-refresh")
    assert table_checksums(clone, ["marts_ml.fct_customer_month_features"], where) == before
    changed = table_checksums(clone, ["marts_ml.fct_customer_month_features"], f"as_of_month = date '{later}'")
    assert changed != later_rows, "the later payment, bill and readings should change the later month"


def test_pipeline_phases_are_selectors():
    """The pipeline names phases (selectors.yml), not tag lists; both parse."""
    selectors = yaml.safe_load((PROJECT / "selectors.yml").read_text())["selectors"]
    assert {"before_scoring", "after_scoring", "unit_tests_before_scoring"} <= {s["name"] for s in selectors}
    assert os.path.exists(PROJECT / "models" / "staging" / "ml" / "README.md")


def test_pipeline_freshness_from_the_ledger_equals_dbt_source_freshness(clone, tmp_path):
    """`gridcredit run` answers source freshness from the load ledger without starting dbt
    (gridcredit/freshness.py): for a fresh, a warned, a stale and a never-loaded source it gives the
    status, loaded-at time and thresholds `dbt source freshness` gives on the same database."""
    import datetime as dt

    from gridcredit import freshness
    from gridcredit.pipeline import FRESHNESS_EXCLUDED_SOURCES

    with psycopg.connect(clone.url) as pg:
        ledger = "update ops.load_ledger set {} where system = %s and table_name = %s"
        pg.execute(ledger.format("finished_at = finished_at - interval '400 days'"), ["billing", "bills"])
        pg.execute(ledger.format("finished_at = finished_at - interval '50 days'"), ["billing", "payments"])
        pg.execute(ledger.format("status = 'failed'"), ["registry", "legal_events"])
    target = tmp_path / "freshness-target"
    excluded = [f"source:{name}" for name in FRESHNESS_EXCLUDED_SOURCES]
    result = subprocess.run(
        [*dbt_child.command(), "source", "freshness", "--exclude", *excluded, "--target-path", str(target)],
        cwd=PROJECT, env=dbt_environment(clone), capture_output=True, text=True, timeout=900,
    )
    assert result.returncode != 0, "dbt found no stale source"
    by_dbt = json.loads((target / "sources.json").read_text())["results"]
    with psycopg.connect(clone.url) as pg:
        ours = freshness.ledger_freshness(pg, json.loads((target / "manifest.json").read_text()),
                                          FRESHNESS_EXCLUDED_SOURCES)
    assert ours is not None, "a raw source is not covered by the ledger rule"

    def loaded_at(result):
        value = dt.datetime.fromisoformat(result["max_loaded_at"]) if result.get("max_loaded_at") else None
        # dbt writes a source never loaded (the query's NULL) as 0001-01-01 with status error.
        return None if value is not None and value.year == 1 else value

    def comparable(results):
        return {
            r["unique_id"]: (r["status"], loaded_at(r),
                             {kind: r["criteria"].get(kind) or {} for kind in ("warn_after", "error_after")})
            for r in results
        }

    assert comparable(ours) == comparable(by_dbt)
    mine = comparable(ours)
    statuses = {unique_id.split(".", 2)[-1]: status for unique_id, (status, *_) in mine.items()}
    assert statuses["billing.bills"] == "error" and statuses["billing.payments"] == "warn"
    assert statuses["registry.legal_events"] == "error" and statuses["billing.customers"] == "pass"
