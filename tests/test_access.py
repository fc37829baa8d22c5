"""Least privilege in the warehouse (issue 7, Access): the privilege matrix, row-level security by
supply region, grants surviving a dbt rebuild, and `gridcredit warehouse init-sql` on a fresh database.

The expected matrix is a literal table below; the test reads the real privileges of the pipeline-built
warehouse (`built_warehouse`, after `gridcredit run`, dbt working as gridcredit_transformer) and counts
mismatches: it must find none.
"""

from __future__ import annotations

import os
import subprocess
import uuid

import psycopg
import pytest
from conftest import GRIDCREDIT_BIN, clone_database, drop_database

from gridcredit import access, warehouse

# w = usage + create on the schema, select and insert on every table in it; r = usage and select on
# every relation, no insert, no create; - = nothing. One row per managed schema.
EXPECTED_MATRIX = """
schema              loader  transformer  ml  bi_reader  analyst  restricted
raw_billing         w       r            -   -          -        -
raw_metering        w       r            -   -          -        -
raw_inspection      w       r            -   -          -        -
raw_registry        w       r            -   -          -        -
raw_macro           w       r            -   -          -        -
ops                 w       r            -   -          -        -
staging             -       w            -   -          -        -
intermediate        -       w            -   -          -        -
marts_core          -       w            -   r          r        -
marts_collections   -       w            -   r          r        -
marts_groups        -       w            -   r          r        -
marts_ml            -       w            r   r          r        -
marts_decisions     -       w            -   r          r        -
reference           -       w            -   r          r        -
restricted          -       w            -   -          -        r
ml                  -       r            w   r          r        -
decisions           -       w            -   -          -        -
access              -       -            -   -          r        -
"""
# Tables with clear personal values outside `restricted` (rejected raw lines): restricted reads them.
EXPECTED_TABLE_EXCEPTIONS = """
table               loader  transformer  ml  bi_reader  analyst  restricted
ops.load_rejects    w       -            -   -          -        r
"""
ROLE_NAMES = {
    "loader": access.LOADER,
    "transformer": access.TRANSFORMER,
    "ml": access.ML,
    "bi_reader": access.BI_READER,
    "analyst": access.ANALYST,
    "restricted": access.RESTRICTED,
}


def _parse(table: str) -> dict[tuple[str, str], str]:
    lines = [line.split() for line in table.strip().splitlines()]
    header, rows = lines[0][1:], lines[1:]
    return {(row[0], role): code for row in rows for role, code in zip(header, row[1:], strict=True)}


def _relation_codes(pg, role: str, relations: list[tuple[str, str, str]], schema_create: bool) -> str:
    """Code of a role on a set of relations (schema, name, relkind)."""
    selects, inserts = [], []
    for schema, name, _kind in relations:
        rel = f'"{schema}"."{name}"'
        select, insert = pg.execute(
            "select has_table_privilege(%s, %s, 'SELECT'), has_table_privilege(%s, %s, 'INSERT')",
            [role, rel, role, rel],
        ).fetchone()
        selects.append(select)
        inserts.append(insert)
    if selects and all(selects) and all(inserts) and any(inserts) and schema_create:
        return "w"
    if selects and all(selects) and not any(inserts) and not schema_create:
        return "r"
    if not any(selects) and not any(inserts) and not schema_create:
        return "-"
    return f"mixed(select {sum(selects)}/{len(selects)}, insert {sum(inserts)}/{len(inserts)}, create {schema_create})"


def actual_matrix(conn: warehouse.Connection) -> tuple[dict[tuple[str, str], str], dict[tuple[str, str], str]]:
    exceptions = {f"{schema}.{table}" for schema, table in access.PERSONAL_TABLES}
    schemas: dict[tuple[str, str], str] = {}
    tables: dict[tuple[str, str], str] = {}
    with psycopg.connect(conn.url) as pg:
        relations = pg.execute(
            "select n.nspname, c.relname, c.relkind from pg_class as c"
            " join pg_namespace as n on n.oid = c.relnamespace"
            " where c.relkind in ('r', 'p', 'v', 'm') and not c.relispartition and n.nspname = any(%s)",
            [list(access.SCHEMA_RULES)],
        ).fetchall()
        for schema in access.SCHEMA_RULES:
            in_schema = [r for r in relations if r[0] == schema and f"{r[0]}.{r[1]}" not in exceptions]
            exists = pg.execute("select to_regnamespace(%s) is not null", [schema]).fetchone()[0]
            if not exists or (not in_schema and schema == "whatif"):
                continue
            for short, role in ROLE_NAMES.items():
                usage, create = pg.execute(
                    "select has_schema_privilege(%s, %s, 'USAGE'), has_schema_privilege(%s, %s, 'CREATE')",
                    [role, schema, role, schema],
                ).fetchone()
                code = _relation_codes(pg, role, in_schema, create)
                if code in ("w", "r") and not usage:
                    code = f"no usage ({code})"
                schemas[(schema, short)] = code
        for name in sorted(exceptions):
            rel = [r for r in relations if f"{r[0]}.{r[1]}" == name]
            if not rel:
                continue
            for short, role in ROLE_NAMES.items():
                create = pg.execute("select has_schema_privilege(%s, %s, 'CREATE')", [role, rel[0][0]]).fetchone()[0]
                tables[(name, short)] = _relation_codes(pg, role, rel, create)
    return schemas, tables


def matrix_mismatches(conn: warehouse.Connection) -> list[str]:
    expected_schemas, expected_tables = _parse(EXPECTED_MATRIX), _parse(EXPECTED_TABLE_EXCEPTIONS)
    actual_schemas, actual_tables = actual_matrix(conn)
    mismatches = []
    for expected, actual in ((expected_schemas, actual_schemas), (expected_tables, actual_tables)):
        for key in sorted(set(expected) | set(actual)):
            if expected.get(key) != actual.get(key):
                mismatches.append(f"{key[0]} / {key[1]}: expected {expected.get(key)}, found {actual.get(key)}")
    return mismatches


def test_privilege_matrix_matches_after_a_pipeline_run(built_warehouse):
    mismatches = matrix_mismatches(built_warehouse)
    assert mismatches == [], "\n".join(mismatches)


def test_dbt_built_the_warehouse_as_the_transformer_role(built_warehouse):
    """dbt works as gridcredit_transformer (least privilege), so everything it built is owned by it."""
    with psycopg.connect(built_warehouse.url) as pg:
        owners = dict(
            pg.execute(
                "select n.nspname, string_agg(distinct c.relowner::regrole::text, ',') from pg_class as c"
                " join pg_namespace as n on n.oid = c.relnamespace"
                " where n.nspname in ('staging', 'intermediate', 'marts_core', 'restricted')"
                " and c.relkind in ('r', 'v')"
                " group by 1"
            ).fetchall()
        )
    assert owners == {s: access.TRANSFORMER for s in ("staging", "intermediate", "marts_core", "restricted")}


def test_ingest_and_ml_worked_as_their_roles(built_warehouse):
    """`gridcredit run` loads as gridcredit_loader and scores as gridcredit_ml (set role), not as the owner.

    Load partitions are created by the loads themselves and never re-owned by apply_access; every ML
    attempt records the role it ran as."""
    with psycopg.connect(built_warehouse.url) as pg:
        partition_owners = {
            owner
            for (owner,) in pg.execute(
                "select distinct c.relowner::regrole::text from pg_class as c"
                " join pg_namespace as n on n.oid = c.relnamespace"
                " where n.nspname like 'raw\\_%%' and c.relispartition"
            ).fetchall()
        }
        ml_roles = {role for (role,) in pg.execute("select distinct database_user from ml.model_run_attempts")}
    assert partition_owners == {access.LOADER}
    assert ml_roles == {access.ML}


@pytest.fixture
def clone(built_warehouse):
    conn = clone_database(built_warehouse)
    yield conn
    drop_database(conn)


def _login_role(admin: psycopg.Connection, group: str) -> tuple[str, str]:
    name, password = f"t_{group.split('_')[-1]}_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    admin.execute(f"create role {name} login password '{password}' in role {group}")
    return name, password


def test_analysts_see_only_their_regions_and_bi_sees_all(clone):
    created = []
    try:
        with psycopg.connect(clone.url, autocommit=True) as admin:
            regions = [
                r[0]
                for r in admin.execute(
                    "select region_code from marts_core.dim_customers group by 1 order by count(*) desc limit 2"
                ).fetchall()
            ]
            assert len(regions) == 2
            per_region = dict(
                admin.execute("select region_code, count(*) from marts_core.dim_customers group by 1").fetchall()
            )
            total = sum(per_region.values())
            regional, regional_pw = _login_role(admin, access.ANALYST)
            everywhere, everywhere_pw = _login_role(admin, access.ANALYST)
            unlisted, unlisted_pw = _login_role(admin, access.ANALYST)
            created += [regional, everywhere, unlisted]
            admin.execute(
                "insert into access.analyst_regions values (%s, %s), (%s, '*')", [regional, regions[0], everywhere]
            )

        def count(role: str, password: str, table: str = "marts_core.dim_customers") -> int:
            login = warehouse.Connection(clone.host, clone.port, role, password, clone.dbname)
            with psycopg.connect(login.url) as pg:
                return pg.execute(f"select count(*) from {table}").fetchone()[0]

        assert count(regional, regional_pw) == per_region[regions[0]]
        assert count(everywhere, everywhere_pw) == total
        assert count(unlisted, unlisted_pw) == 0, "an analyst with no region listed sees nothing"
        # Every region_code table is filtered, not only dim_customers.
        with psycopg.connect(clone.url) as admin:
            months_in_region = admin.execute(
                "select count(*) from marts_core.fct_customer_months where region_code = %s", [regions[0]]
            ).fetchone()[0]
        assert count(regional, regional_pw, "marts_core.fct_customer_months") == months_in_region
        # Analysts read no raw, staging or restricted data.
        login = warehouse.Connection(clone.host, clone.port, everywhere, everywhere_pw, clone.dbname)
        with psycopg.connect(login.url, autocommit=True) as pg:
            for table in ("raw_billing.customers", "restricted.customer_personal_data", "staging.stg_billing__bills"):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    pg.execute(f"select 1 from {table} limit 1")
    finally:
        with psycopg.connect(clone.url, autocommit=True) as admin:
            for role in created:
                admin.execute(f"drop owned by {role}")
                admin.execute(f"drop role if exists {role}")


def test_a_dbt_rebuild_keeps_grants_and_row_level_security(clone):
    env = dict(os.environ, WAREHOUSE_URL=clone.url)
    result = subprocess.run(
        [GRIDCREDIT_BIN, "dbt", "run", "--select", "dim_customers"],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    with psycopg.connect(clone.url) as pg:
        rls = pg.execute(
            "select relrowsecurity from pg_class where oid = 'marts_core.dim_customers'::regclass"
        ).fetchone()[0]
        policies = {
            row[0]
            for row in pg.execute(
                "select policyname from pg_policies where schemaname = 'marts_core' and tablename = 'dim_customers'"
            ).fetchall()
        }
    assert rls and policies == {access.ANALYST_POLICY, access.READERS_POLICY}
    assert matrix_mismatches(clone) == []


def _pending_relation_statements(pg: psycopg.Connection) -> list[str]:
    owner_role = pg.execute("select current_user").fetchone()[0]
    _schemas, relations = access._current_state(pg)
    return access.relation_statements(relations, owner_role)


def test_grant_pass_writes_only_what_differs_and_repairs_every_difference(clone):
    """After a pass, the next one has nothing to write on any relation (no catalogue write, no lock of
    the policy statements: ADR 0115). A revoked grant, row-level security switched off, an altered
    policy, a dropped policy and a relation re-owned by the warehouse owner are each found and put back."""
    with psycopg.connect(clone.url, autocommit=True) as pg:
        access.apply_access(pg)
        assert _pending_relation_statements(pg) == []
        pg.execute(f"revoke select on marts_core.fct_bills from {access.BI_READER}")
        pg.execute("alter table marts_collections.fct_top_arrears_accounts disable row level security")
        pg.execute(f"alter policy {access.ANALYST_POLICY} on marts_core.dim_customers using (true)")
        pg.execute(f"drop policy {access.READERS_POLICY} on marts_core.fct_customer_months")
        pg.execute("alter table marts_core.dim_tariffs owner to current_user")
        pending = _pending_relation_statements(pg)
        touched = {
            name
            for name in (
                "dim_customers",
                "fct_top_arrears_accounts",
                "fct_bills",
                "fct_customer_months",
                "dim_tariffs",
            )
            if any(f'"{name}"' in statement for statement in pending)
        }
        assert touched == {
            "dim_customers",
            "fct_top_arrears_accounts",
            "fct_bills",
            "fct_customer_months",
            "dim_tariffs",
        }
        assert all(any(f'"{name}"' in statement for name in touched) for statement in pending), (
            "a statement for a relation that was not changed"
        )
        # The exclusive locks come first, before any grant rewrites a pg_class row (autovacuum deadlock).
        assert pending[0].startswith("lock table ") and sum(s.startswith("lock table") for s in pending) == 1
        assert {name for name in touched if f'"{name}"' in pending[0]} == touched - {"fct_bills"}
        access.apply_access(pg)
        assert _pending_relation_statements(pg) == []
        qual = pg.execute(
            "select qual from pg_policies where schemaname = 'marts_core' and tablename = 'dim_customers'"
            " and policyname = %s",
            [access.ANALYST_POLICY],
        ).fetchone()[0]
        owner = pg.execute(
            "select relowner::regrole::text from pg_class where oid = 'marts_core.dim_tariffs'::regclass"
        ).fetchone()[0]
    assert "analyst_regions" in qual
    assert owner == access.TRANSFORMER
    assert matrix_mismatches(clone) == []


def test_privilege_mismatch_is_detected(clone):
    """The matrix test can fail: one stray grant is reported."""
    with psycopg.connect(clone.url, autocommit=True) as pg:
        pg.execute(f"grant select on raw_billing.customers to {access.BI_READER}")
    mismatches = matrix_mismatches(clone)
    assert len(mismatches) == 1 and "raw_billing / bi_reader" in mismatches[0]


def test_stages_hold_only_their_roles_privileges(clone, pipeline_extract):
    """With one privilege of its role revoked, a stage fails: it does not fall back on the owner's rights."""
    from gridcredit.ingestion.loader import ingest_directory
    from gridcredit.ml.config import load_config
    from gridcredit.ml.scoring import score_all

    access.apply(clone)  # as `gridcredit run` does (database-level grants are not copied with a clone)
    with psycopg.connect(clone.url, autocommit=True) as pg:
        pg.execute(f"revoke usage on schema ops from {access.LOADER}")
        pg.execute(f"revoke select on all tables in schema marts_ml from {access.ML}")
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="ops"):
        ingest_directory(pipeline_extract, conn=clone, work_as="ingest")
    # (Without SELECT the ML role does not even see the feature table: "does not exist".)
    with pytest.raises((psycopg.errors.InsufficientPrivilege, LookupError), match="fct_customer_month"):
        score_all(clone, cfg=load_config(), publish=False, work_as="ml")
    # The same calls as the login role (the warehouse owner) go through the revoked privileges.
    ingest_directory(pipeline_extract, conn=clone)


def test_init_sql_prepares_a_fresh_database(session_warehouse, tmp_path):
    """The DBA script runs with psql on a fresh database (twice: idempotent) and sets up the same rules."""
    name = f"init_{uuid.uuid4().hex[:8]}"
    script = subprocess.run(
        [GRIDCREDIT_BIN, "warehouse", "init-sql", "--database", name, "--owner", session_warehouse.user],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert "password" not in script.replace("password '...'", "")
    psql = str(warehouse._pg_install_dir() / "bin" / "psql")
    admin_url = session_warehouse.with_dbname("postgres").url
    try:
        for _ in range(2):
            result = subprocess.run(
                [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", admin_url],
                input=script,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert result.returncode == 0, result.stderr
        conn = session_warehouse.with_dbname(name)
        with psycopg.connect(conn.url) as pg:
            owners = dict(
                pg.execute(
                    "select nspname, nspowner::regrole::text from pg_namespace where nspname = any(%s)",
                    [list(access.SCHEMA_RULES)],
                ).fetchall()
            )
            # A table dbt (the transformer) creates later is readable by BI through default privileges.
            pg.execute(f"set role {access.TRANSFORMER}")
            pg.execute("create table marts_core.later_table (x int)")
            pg.execute("reset role")
            bi_can_read = pg.execute(
                "select has_table_privilege(%s, 'marts_core.later_table', 'SELECT')", [access.BI_READER]
            ).fetchone()[0]
            loader_can_read = pg.execute(
                "select has_table_privilege(%s, 'marts_core.later_table', 'SELECT')", [access.LOADER]
            ).fetchone()[0]
        assert set(owners) == set(access.SCHEMA_RULES)
        assert owners["raw_billing"] == access.LOADER and owners["marts_core"] == access.TRANSFORMER
        assert owners["ml"] == access.ML and owners["restricted"] == access.TRANSFORMER
        assert bi_can_read and not loader_can_read
    finally:
        with psycopg.connect(admin_url, autocommit=True) as pg:
            pg.execute(f'drop database if exists "{name}" with (force)')


def test_grant_pass_runs_again_after_a_deadlock(monkeypatch):
    """A deadlock with autovacuum in the grant pass (seen once at the start of a dbt stage) rolls it back
    and runs it again; after the last attempt the error names the deadlock instead of failing the stage
    on the first one."""
    monkeypatch.setenv("GRIDCREDIT_GRANT_ATTEMPTS", "3")
    monkeypatch.setattr(access, "_backoff", lambda seconds: None)
    calls = []

    def deadlocks_once(conn):
        calls.append(conn)
        if len(calls) == 1:
            raise psycopg.errors.DeadlockDetected("deadlock detected")
        return 42

    monkeypatch.setattr(access, "_apply_once", deadlocks_once)
    assert access.apply("conn") == 42
    assert calls == ["conn", "conn"]

    def always_deadlocks(conn):
        calls.append(conn)
        raise psycopg.errors.DeadlockDetected("deadlock detected")

    calls.clear()
    monkeypatch.setattr(access, "_apply_once", always_deadlocks)
    with pytest.raises(RuntimeError, match="after 3 attempt.*deadlock.*nothing was changed"):
        access.apply("conn")
    assert len(calls) == 3
