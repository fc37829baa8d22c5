"""Write-audit-publish: failing tests and stale sources leave every published table as it was.

Each case works on a clone of the session's built warehouse, injects one defect that an
error-severity dbt test (or the freshness check) must catch, reruns `gridcredit run` and compares
the ordered checksum of every published table (conftest.published_checksums) with the state before.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time

import psycopg
import pytest
from conftest import GRIDCREDIT_BIN, clone_database, drop_database, published_checksums

from gridcredit.publish import PUBLISHED_SCHEMA


def _published(conn) -> dict[str, str]:
    """Published checksums, without ml.model_run_attempts: the ML step's log of every attempt
    (failed ones too), appended outside the switch on purpose (docs/decisions/0090)."""
    return {name: digest for name, digest in published_checksums(conn).items() if name != "ml.model_run_attempts"}


def _run(conn, *args, **env):
    environment = dict(os.environ, WAREHOUSE_URL=conn.url, **env)
    return subprocess.run([GRIDCREDIT_BIN, "run", *args], env=environment, capture_output=True, text=True, timeout=1800)


@pytest.fixture
def clone(built_warehouse):
    conn = clone_database(built_warehouse)
    yield conn
    drop_database(conn)


def _latest_load_customer(pg) -> str:
    return pg.execute(
        "select customer_id from raw_billing.customers order by _load_id desc, customer_id limit 1"
    ).fetchone()[0]


# Each defect: (what it breaks, SQL that injects it, the test that must catch it).
DEFECTS = {
    "staging: a customer type outside the code list": (
        "update raw_billing.customers set customer_type = 'spaceship' where customer_id = %(customer)s",
        "accepted_values_stg_billing__customers_customer_type",
    ),
    "marts_core: a customer in a supply region that does not exist": (
        "update raw_billing.customers set region_code = 'ZZ99' where customer_id = %(customer)s",
        "relationships_dim_customers_region_code",
    ),
    # Caught by the staging test of the ML step's output, in the after-scoring phase.
    "after scoring: a credit score outside 0-100 from the ML step": (
        "update ml.credit_scores set score = 250"
        " where as_of_month = (select max(as_of_month) from ml.credit_scores)"
        " and customer_id = (select min(customer_id) from ml.credit_scores)",
        "accepted_range_stg_ml__credit_scores_score",
    ),
}


@pytest.mark.parametrize("defect", list(DEFECTS))
def test_failing_test_leaves_published_data_unchanged(clone, defect):
    statement, test_name = DEFECTS[defect]
    with psycopg.connect(clone.url) as pg:
        pg.execute(statement, {"customer": _latest_load_customer(pg)})
    before = _published(clone)
    publications = _count(clone, "ops.publications")

    result = _run(clone)

    assert result.returncode != 0, result.stdout[-3000:]
    assert _published(clone) == before, "a failing test let data through to a published schema"
    assert _count(clone, "ops.publications") == publications
    # The message names the failed test and the table holding its failing rows, which holds them.
    message = result.stderr
    assert test_name in message, message[-3000:]
    stored = re.search(r"failing row\(s\), stored in (\S+)", message)
    assert stored, message[-3000:]
    with psycopg.connect(clone.url) as pg:
        assert pg.execute(f"select count(*) from {stored.group(1)}").fetchone()[0] > 0


def test_stale_source_stops_the_publish(clone):
    with psycopg.connect(clone.url) as pg:
        pg.execute(
            "update ops.load_ledger set finished_at = finished_at - interval '400 days'"
            " where system = 'billing' and table_name = 'bills'"
        )
    before = _published(clone)
    result = _run(clone)
    assert result.returncode != 0
    assert "source freshness" in result.stderr and "billing.bills" in result.stderr, result.stderr[-3000:]
    assert "publish is stopped" in result.stderr
    assert _published(clone) == before


def test_publish_switches_build_areas_and_keeps_privileges_and_policies(clone):
    """A clean rerun switches every build area in. Privileges and row-level security granted on the
    published tables stay with the published names (the tables switched in get them in the same
    transaction), the build areas give readers nothing, and what-if results outside the switch stay."""
    with psycopg.connect(clone.url, autocommit=True) as pg:
        pg.execute("do $$ begin create role wap_reader nologin; exception when duplicate_object then null; end $$")
        pg.execute("grant usage on schema marts_core to wap_reader")
        pg.execute("grant select on all tables in schema marts_core to wap_reader")
        pg.execute("alter default privileges in schema marts_core grant select on tables to wap_reader")
        pg.execute("grant select on marts_core.fct_customer_months to wap_reader")
        pg.execute("alter table marts_core.dim_customers enable row level security")
        pg.execute(
            "create policy wap_one_region on marts_core.dim_customers for select to wap_reader"
            " using (region_code = (select min(region_code) from marts_core.dim_customers))"
        )
        old_oid = pg.execute("select 'marts_core.dim_customers'::regclass::oid").fetchone()[0]
        pg.execute("create schema if not exists whatif")
        pg.execute("create table if not exists whatif.wap_probe (n int)")
        pg.execute("insert into whatif.wap_probe values (1)")
        publications = _count(clone, "ops.publications")
    result = _run(clone, "--no-resume")
    assert result.returncode == 0, result.stderr[-3000:]
    with psycopg.connect(clone.url) as pg:
        assert _count(clone, "ops.publications") == publications + 1
        assert pg.execute("select has_schema_privilege('wap_reader', 'marts_core', 'usage')").fetchone()[0]
        assert not pg.execute("select has_schema_privilege('wap_reader', 'marts_core__build', 'usage')").fetchone()[0]
        defaults = pg.execute(
            "select ns.nspname from pg_default_acl as d join pg_namespace as ns on ns.oid = d.defaclnamespace"
            " where d.defaclacl::text like '%%wap_reader%%'"
        ).fetchall()
        # The next build creates its tables in the build area: both schemas carry the defaults.
        assert sorted(defaults) == [("marts_core",), ("marts_core__build",)]
        assert pg.execute("select 'marts_core.dim_customers'::regclass::oid").fetchone()[0] != old_oid
        for table in ("dim_customers", "fct_customer_months", "fct_bills"):
            assert pg.execute(
                "select has_table_privilege('wap_reader', %s, 'select')", [f"marts_core.{table}"]
            ).fetchone()[0], table
        assert pg.execute(
            "select relrowsecurity from pg_class where oid = 'marts_core.dim_customers'::regclass"
        ).fetchone()[0]
        assert (
            pg.execute(
                "select count(*) from pg_policies where schemaname = 'marts_core' and tablename = 'dim_customers'"
                " and policyname = 'wap_one_region'"
            ).fetchone()[0]
            == 1
        )
        assert pg.execute("select count(*) from whatif.wap_probe").fetchone()[0] == 1
        # The access rules (gridcredit.access.apply_access, inside the switch transaction): BI reads the
        # published mart and never a build area; the analysts' row-level security is on the new table.
        assert pg.execute("select has_table_privilege('bi_reader', 'marts_core.dim_customers', 'select')").fetchone()[0]
        for role in ("bi_reader", "gridcredit_analyst"):
            assert not pg.execute(
                "select has_schema_privilege(%s, 'marts_core__build', 'usage')", [role]
            ).fetchone()[0], role
        access_policies = {
            name
            for (name,) in pg.execute(
                "select policyname from pg_policies where schemaname = 'marts_core' and tablename = 'dim_customers'"
            ).fetchall()
        }
        assert {"gridcredit_analyst_regions", "gridcredit_readers_all_rows"} <= access_policies
        # No leftovers of dbt in any published schema or build area, no ml staging tables.
        leftovers = pg.execute(
            "select ns.nspname || '.' || c.relname from pg_class as c"
            " join pg_namespace as ns on ns.oid = c.relnamespace where c.relname ~ '(__dbt_tmp|__dbt_backup|__staged)$'"
        ).fetchall()
        assert leftovers == []
        schemas = [name for (name,) in pg.execute("select nspname from pg_namespace order by 1")]
    published = [name for name in schemas if PUBLISHED_SCHEMA.match(name) and not name.endswith("__build")]
    assert {"marts_core", "marts_ml", "reference"} <= set(published)
    assert all(f"{name}__build" in schemas for name in published)


def _count(conn, table: str) -> int:
    with psycopg.connect(conn.url) as pg:
        if pg.execute("select to_regclass(%s)", [table]).fetchone()[0] is None:
            return 0
        return pg.execute(f"select count(*) from {table}").fetchone()[0]


def test_publish_retries_after_a_lock_conflict_and_names_the_holder(clone, monkeypatch, capsys):
    """Readers with open transactions on published tables do not hold the switch up: it writes grants and
    row-level security only where they differ (ADR 0115), and locks the ML tables against writers only.
    A session writing to a published ML table does: the attempt times out, rolls back, says which session
    held the lock, and the next attempt switches everything in."""
    from gridcredit import publish as publishing

    monkeypatch.setenv("GRIDCREDIT_PUBLISH_LOCK_TIMEOUT", "300ms")
    monkeypatch.setenv("GRIDCREDIT_PUBLISH_ATTEMPTS", "3")
    publications = _count(clone, "ops.publications")
    with psycopg.connect(clone.url, application_name="publish-test-reader") as reader:
        reader.execute("select count(*) from ml.arrears_warnings")  # the transaction stays open
        reader.execute("select count(*) from marts_core.dim_customers")
        assert publishing.publish(clone).attempts == 1
    blocker = psycopg.connect(clone.url, application_name="publish-test-writer")
    blocker.execute("lock table ml.arrears_warnings in row exclusive mode")  # as an open insert would
    released = []

    def writer_finishes(seconds):
        released.append(seconds)
        blocker.rollback()

    monkeypatch.setattr(publishing, "_backoff", writer_finishes)
    try:
        publication = publishing.publish(clone)
    finally:
        blocker.close()
    assert publication.attempts == 2 and len(released) == 1
    message = capsys.readouterr().err
    assert "publish attempt 1/3" in message and "publish-test-writer" in message, message
    assert "ml.arrears_warnings" in message, message
    assert _count(clone, "ops.publications") == publications + 2


def test_publish_locks_the_switched_in_tables_before_writing_grants(clone, monkeypatch):
    """An autovacuum of a table being switched in must not deadlock the switch (ADR 0115).

    A session plays the autovacuum: it holds the table's share update exclusive lock, and once the
    switch waits for that table it updates the table's pg_class row, as a vacuum does at its end. Had the
    switch rewritten that row first (a grant) and asked for the lock after (a policy), the two would wait
    for each other and one would die with a deadlock; the switch takes its locks before any grant."""
    from gridcredit import access
    from gridcredit import publish as publishing

    monkeypatch.setenv("GRIDCREDIT_PUBLISH_LOCK_TIMEOUT", "60s")
    monkeypatch.setenv("GRIDCREDIT_PUBLISH_ATTEMPTS", "1")
    table = "marts_core__build.dim_customers"
    result = _run(clone, "--no-resume")  # a run leaves the build areas (the generation it replaced)
    assert result.returncode == 0, result.stderr[-3000:]
    with psycopg.connect(clone.url, autocommit=True) as pg:
        # as on a table dbt just rebuilt: grants and a policy to write once it is published
        pg.execute(f"drop policy {access.READERS_POLICY} on {table}")
        pg.execute(f"revoke select on {table} from {access.BI_READER}")
    vacuum = psycopg.connect(clone.url, application_name="publish-test-autovacuum")
    oid = vacuum.execute("select %s::regclass::oid", [table]).fetchone()[0]
    vacuum.execute(f"lock table {table} in share update exclusive mode")
    outcome: dict = {}

    def switch() -> None:
        try:
            outcome["publication"] = publishing.publish(clone)
        except Exception as exc:  # reported by the assertion below
            outcome["error"] = exc

    thread = threading.Thread(target=switch)
    thread.start()
    try:
        deadline = time.monotonic() + 120
        with psycopg.connect(clone.url, autocommit=True) as watcher:
            while not watcher.execute(
                "select exists (select from pg_locks where relation = %s and not granted)", [oid]
            ).fetchone()[0]:
                assert time.monotonic() < deadline and thread.is_alive(), outcome
                time.sleep(0.05)
        vacuum.execute("update pg_class set relhasindex = relhasindex where oid = %s", [oid])
    finally:
        vacuum.rollback()
        vacuum.close()
        thread.join(300)
    assert "error" not in outcome, outcome
    assert outcome["publication"].attempts == 1
    with psycopg.connect(clone.url) as pg:
        policies = {
            name
            for (name,) in pg.execute(
                "select policyname from pg_policies where schemaname = 'marts_core' and tablename = 'dim_customers'"
            )
        }
        assert policies == {access.ANALYST_POLICY, access.READERS_POLICY}
        assert pg.execute("select has_table_privilege('bi_reader', 'marts_core.dim_customers', 'select')").fetchone()[0]


def test_publish_gives_up_cleanly_when_a_writer_keeps_its_lock(clone, monkeypatch):
    """Every attempt times out: the error names the writer and the published data is unchanged."""
    from gridcredit import publish as publishing

    monkeypatch.setenv("GRIDCREDIT_PUBLISH_LOCK_TIMEOUT", "300ms")
    monkeypatch.setenv("GRIDCREDIT_PUBLISH_ATTEMPTS", "2")
    monkeypatch.setattr(publishing, "_backoff", lambda seconds: None)
    before = _published(clone)
    publications = _count(clone, "ops.publications")
    with psycopg.connect(clone.url, application_name="publish-test-writer") as blocker:
        blocker.execute("lock table ml.arrears_warnings in row exclusive mode")
        with pytest.raises(publishing.PublishConflictError) as raised:
            publishing.publish(clone)
        blocker.rollback()
    message = str(raised.value)
    assert "after 2 attempt(s)" in message and "publish-test-writer" in message, message
    assert "nothing was published" in message
    assert _published(clone) == before
    assert _count(clone, "ops.publications") == publications


def test_publish_runs_again_after_a_deadlock(monkeypatch):
    """A deadlock (seen once at 10k customers, likely with autovacuum) rolls the switch back; it runs
    again, and after the last attempt the error says it was a deadlock and that nothing was published."""
    from gridcredit import publish as publishing

    monkeypatch.setenv("GRIDCREDIT_PUBLISH_ATTEMPTS", "3")
    monkeypatch.setattr(publishing, "_backoff", lambda seconds: None)
    monkeypatch.setattr(publishing, "_lock_holders", lambda conn: [])
    calls = []

    def deadlocks_once(conn, run_id, lock_timeout):
        calls.append(run_id)
        if len(calls) == 1:
            raise psycopg.errors.DeadlockDetected("deadlock detected")
        return publishing.Publication(["marts_core"], {}, [])

    monkeypatch.setattr(publishing, "_publish_once", deadlocks_once)
    assert publishing.publish(None, 7).attempts == 2
    assert calls == [7, 7]

    def always_deadlocks(conn, run_id, lock_timeout):
        calls.append(run_id)
        raise psycopg.errors.DeadlockDetected("deadlock detected")

    calls.clear()
    monkeypatch.setattr(publishing, "_publish_once", always_deadlocks)
    with pytest.raises(publishing.PublishConflictError, match="after 3 attempt.*deadlock.*nothing was published"):
        publishing.publish(None, 7)
    assert len(calls) == 3


def test_catch_up_copies_newer_published_months_and_keeps_newer_build_months(fresh_database):
    """The build area, one run behind after a switch, is caught up month by month from the published
    table: the months the published table holds from loads the build table has not seen (newer than
    its newest) are copied, whether the build table lacks them or holds them older (a corrected
    re-delivery included); a build table ahead of the published one (a run stopped before its
    publish) is kept; a table of other columns (a code change) is left alone; a table missing from
    the build area (the first publication) is created like the published one."""
    from gridcredit.publish import IncrementalMart, catch_up_build_area, incremental_marts

    with psycopg.connect(fresh_database.url, autocommit=True) as pg:
        pg.execute("""
            create schema marts_core; create schema marts_core__build; create schema marts_ml;
            create table marts_core.months (month_start_date date not null, customer_id text not null,
                amount numeric(12, 2), source_load_id bigint not null, primary key (month_start_date, customer_id));
            create table marts_core__build.months (like marts_core.months including all);
            insert into marts_core.months values
                ('2024-01-01', 'a', 1, 1), ('2024-01-01', 'b', 2, 1), ('2024-02-01', 'a', 30, 3),
                ('2024-03-01', 'a', 40, 3), ('2024-04-01', 'a', 50, 4), ('2024-04-01', 'b', 60, 4);
            insert into marts_core__build.months values
                ('2024-01-01', 'a', 1, 1), ('2024-01-01', 'b', 2, 1),
                ('2024-02-01', 'a', 3, 2), ('2024-03-01', 'a', 4, 2);
            create table marts_core.ahead (like marts_core.months including all);
            create table marts_core__build.ahead (like marts_core.months including all);
            insert into marts_core.ahead values ('2024-01-01', 'a', 1, 1), ('2024-02-01', 'a', 30, 3);
            insert into marts_core__build.ahead values
                ('2024-01-01', 'a', 1, 1), ('2024-02-01', 'a', 30, 3), ('2024-03-01', 'a', 400, 4);
            create table marts_core.redelivered (like marts_core.months including all);
            create table marts_core__build.redelivered (like marts_core.months including all);
            insert into marts_core.redelivered values
                ('2024-01-01', 'a', 1, 1), ('2024-02-01', 'a', 31, 5), ('2024-03-01', 'a', 41, 5);
            insert into marts_core__build.redelivered values
                ('2024-01-01', 'a', 1, 1), ('2024-02-01', 'a', 30, 3), ('2024-03-01', 'a', 40, 4);
            create table marts_core.changed (month_start_date date, source_load_id bigint, extra int);
            create table marts_core__build.changed (month_start_date date, source_load_id bigint);
            insert into marts_core.changed values ('2024-01-01', 9, 1);
            create table marts_ml.features (as_of_month date primary key, source_load_id bigint not null);
            insert into marts_ml.features values ('2024-01-01', 1), ('2024-02-01', 3);
            create schema marts_ml__build;
            create table marts_ml.labels (as_of_month date primary key, source_load_id bigint not null);
            create table marts_ml__build.labels (like marts_ml.labels including all);
            insert into marts_ml.labels values ('2024-01-01', 1), ('2024-02-01', 3);
            insert into marts_ml__build.labels values ('2024-01-01', 1);
        """)
    manifest = {"nodes": {
        "model.gridcredit.ahead": {"resource_type": "model", "name": "ahead", "schema": "marts_core__build",
                                   "config": {"materialized": "incremental", "unique_key": "month_start_date"}},
        "model.gridcredit.redelivered": {"resource_type": "model", "name": "redelivered",
                                         "schema": "marts_core__build",
                                         "config": {"materialized": "incremental", "unique_key": "month_start_date"}},
        "model.gridcredit.months": {"resource_type": "model", "name": "months", "schema": "marts_core__build",
                                    "config": {"materialized": "incremental", "unique_key": "month_start_date"}},
        "model.gridcredit.changed": {"resource_type": "model", "name": "changed", "schema": "marts_core__build",
                                     "config": {"materialized": "incremental", "unique_key": "month_start_date"}},
        "model.gridcredit.features": {"resource_type": "model", "name": "features", "schema": "marts_ml__build",
                                      "config": {"materialized": "incremental", "unique_key": "as_of_month"}},
        # rebuilds many months a run: an existing build table is left to dbt (ADR 0114)
        "model.gridcredit.labels": {"resource_type": "model", "name": "labels", "schema": "marts_ml__build",
                                    "config": {"materialized": "incremental", "unique_key": "as_of_month",
                                               "meta": {"build_area_catch_up": False}}},
        "model.gridcredit.staged": {"resource_type": "model", "name": "staged", "schema": "staging",
                                    "config": {"materialized": "incremental", "unique_key": "month_start_date"}},
        "model.gridcredit.table": {"resource_type": "model", "name": "table", "schema": "marts_core__build",
                                   "config": {"materialized": "table"}},
    }}
    marts = incremental_marts(manifest)
    assert marts == [IncrementalMart("marts_core", "ahead", "month_start_date"),
                     IncrementalMart("marts_core", "changed", "month_start_date"),
                     IncrementalMart("marts_core", "months", "month_start_date"),
                     IncrementalMart("marts_core", "redelivered", "month_start_date"),
                     IncrementalMart("marts_ml", "features", "as_of_month"),
                     IncrementalMart("marts_ml", "labels", "as_of_month", copy_months=False)]
    copied = catch_up_build_area(fresh_database, marts, work_as=None)
    assert copied == {"marts_core.months": 4, "marts_core.redelivered": 2, "marts_ml.features": 2}
    with psycopg.connect(fresh_database.url) as pg:
        def build_rows(table):
            return pg.execute(f"select month_start_date::text, customer_id, amount::int, source_load_id"
                              f" from marts_core__build.{table} order by 1, 2").fetchall()

        # loads 3 and 4 were not in the build table: February replaced, March and April copied
        assert build_rows("months") == [("2024-01-01", "a", 1, 1), ("2024-01-01", "b", 2, 1),
                                        ("2024-02-01", "a", 30, 3), ("2024-03-01", "a", 40, 3),
                                        ("2024-04-01", "a", 50, 4), ("2024-04-01", "b", 60, 4)]
        assert build_rows("ahead") == [("2024-01-01", "a", 1, 1), ("2024-02-01", "a", 30, 3),
                                       ("2024-03-01", "a", 400, 4)]
        # load 5 re-delivered February (a load touches its first month and every later one): February
        # on is copied, January (2 rows copied, not 3) is the build table's own
        assert build_rows("redelivered") == [("2024-01-01", "a", 1, 1), ("2024-02-01", "a", 31, 5),
                                             ("2024-03-01", "a", 41, 5)]
        assert pg.execute("select count(*) from marts_core__build.changed").fetchone()[0] == 0
        assert pg.execute("select count(*) from marts_ml__build.features").fetchone()[0] == 2
        assert pg.execute("select count(*) from marts_ml__build.labels").fetchone()[0] == 1
        # created like the published table: its primary key came along
        assert pg.execute("select count(*) from pg_constraint where conrelid = 'marts_ml__build.features'::regclass"
                          " and contype = 'p'").fetchone()[0] == 1
    assert catch_up_build_area(fresh_database, marts, work_as=None) == {}, "a second catch-up copied again"
