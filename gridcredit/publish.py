"""Write-audit-publish: switch the audited build area into the published schemas in ONE transaction.

`gridcredit run` builds every published dbt schema (``reference``, ``marts*``) as
``<schema>__build`` and prepares ``ml__build`` (the next state of ``ml``); all error-severity tests
run there. Only then :func:`publish` opens one transaction that

1. drops leftovers of killed dbt runs (``*__dbt_tmp``, ``*__dbt_backup``) from the build area;
2. swaps each published schema with its build area by three renames (``S`` -> ``S__previous``,
   ``S__build`` -> ``S``, ``S__previous`` -> ``S__build``): the previous published state becomes
   the next build area, from which incremental models catch up (docs/decisions/0011);
3. re-applies privileges in one path: ``gridcredit.access.apply_access`` derives every grant,
   default privilege, row-level security flag and policy of the roles gridcredit manages from its
   rules (ADR 0080); what a DBA added beyond those rules (grants to other roles, other policies)
   belongs to the published *name*, so it is carried from the schema and tables switched out to
   the ones switched in (:func:`_carry_unmanaged_access`);
4. makes every ``ml`` table equal its build table (ml tables keep their OIDs: views bind to them);
5. records the publication in ``ops.publications`` and commits.

A crash anywhere before the commit leaves every published schema exactly as it was. The switch
waits at most ``publish.lock_timeout`` for each lock (a session writing to a published ML table, or
a reader of a published table whose grants or row-level security must be repaired: ADR 0115 leaves
correct tables alone, so plain readers no longer hold it up; a wait would queue every later reader
behind the switch) and is retried
as a whole, ``publish.attempts`` times, after a lock timeout or a deadlock (a reader's transaction
touching two published tables while the switch locks them in another order): the rolled-back
attempt changed nothing. The error after the last attempt names the sessions holding locks on
published tables. What-if results
(``whatif``) and analysts' overrides (``decisions``) are not in the switch and are never touched.
See docs/decisions/0090-write-audit-publish.md.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from dataclasses import dataclass

import psycopg
from psycopg import sql

from gridcredit import faults, settings, warehouse

BUILD_SUFFIX = "__build"
# Schemas Superset and analysts read (dbt_project/macros/utils/generate_schema_name.sql holds the same rule).
PUBLISHED_SCHEMA = re.compile(r"^(reference|marts\w*)$")
# The schemas readers see, as a PostgreSQL regular expression (`table_schema ~ %s`): the marts, ml and
# reference, never a build area (`marts_core__build`) or a leftover. Benchmarks and tests take it
# from here so that the list lives in one place.
PUBLISHED_SCHEMAS_SQL = r"^(marts(_[a-z0-9]+)*|ml|reference)$"
PUBLISHED_MART_SCHEMAS_SQL = r"^marts(_[a-z0-9]+)*$"
BUILD_AREA_SQL = r"^(marts(_[a-z0-9]+)*|ml|reference)__build$"
DBT_LEFTOVER = re.compile(r"__dbt_(tmp|backup)$")

PUBLICATIONS_DDL = """
create schema if not exists ops;
create table if not exists ops.publications (
    publication_id bigint generated always as identity primary key,
    run_id bigint,
    published_at timestamptz not null default now(),
    schemas text[] not null,
    ml_rows_inserted jsonb not null
);
comment on table ops.publications is
    'Every write-audit-publish switch (gridcredit run): which schemas were switched in, when, by which run.';
"""

# pg_default_acl object types and the words ALTER DEFAULT PRIVILEGES uses for them.
DEFAULT_ACL_OBJECTS = {"r": "tables", "S": "sequences", "f": "functions", "T": "types"}


@dataclass
class Publication:
    schemas: list[str]
    ml_rows_inserted: dict[str, int]
    leftovers_dropped: list[str]
    attempts: int = 1


class PublishConflictError(RuntimeError):
    """The switch could not take its locks in ``publish.attempts`` tries; nothing was published."""


@dataclass(frozen=True)
class PublishSettings:
    lock_timeout: str
    attempts: int
    backoff_s: float


def publish_settings() -> PublishSettings:
    """``publish:`` of gridcredit.yaml; GRIDCREDIT_PUBLISH_LOCK_TIMEOUT / _ATTEMPTS override."""
    section = settings.project_config().get("publish") or {}
    return PublishSettings(
        lock_timeout=str(os.environ.get("GRIDCREDIT_PUBLISH_LOCK_TIMEOUT", section.get("lock_timeout", "30s"))),
        attempts=max(1, int(os.environ.get("GRIDCREDIT_PUBLISH_ATTEMPTS", section.get("attempts", 5)))),
        backoff_s=float(section.get("backoff_seconds", 5)),
    )


def _lock_holders(conn: warehouse.Connection) -> list[str]:
    """Other sessions holding or awaiting locks on relations of published schemas or build areas."""
    with warehouse.connect(conn, autocommit=True) as pg:
        rows = pg.execute(
            """
            select activity.pid, coalesce(nullif(activity.application_name, ''), '?'), activity.usename,
                   activity.state, left(regexp_replace(coalesce(activity.query, ''), '\\s+', ' ', 'g'), 120),
                   string_agg(distinct ns.nspname || '.' || c.relname, ', ')
            from pg_locks as locks
            join pg_class as c on c.oid = locks.relation
            join pg_namespace as ns on ns.oid = c.relnamespace
            join pg_stat_activity as activity on activity.pid = locks.pid
            where locks.pid <> pg_backend_pid()
              and (ns.nspname ~ %(published)s or ns.nspname ~ %(build)s)
            group by 1, 2, 3, 4, 5
            order by 1
            """,
            {"published": PUBLISHED_SCHEMAS_SQL, "build": BUILD_AREA_SQL},
        ).fetchall()
    return [
        f"server pid {pid} ({app}, role {user}, {state}): locks {relations}; last query: {query}"
        for pid, app, user, state, query, relations in rows
    ]


def _backoff(seconds: float) -> None:
    time.sleep(seconds)


def build_areas(pg: psycopg.Connection) -> list[str]:
    """Published schema names that have a build area, sorted (the switch order)."""
    names = [
        name[: -len(BUILD_SUFFIX)]
        for (name,) in pg.execute(
            "select nspname from pg_namespace where nspname like %s", ["%" + BUILD_SUFFIX.replace("_", "\\_")]
        ).fetchall()
    ]
    return sorted(name for name in names if PUBLISHED_SCHEMA.match(name))


def _schema_grants(pg: psycopg.Connection, schema: str) -> set[tuple[str, str]]:
    """(grantee, privilege) of a schema's ACL, the owner's own rights left out."""
    rows = pg.execute(
        """
        select coalesce(grantee.rolname, 'public'), acl.privilege_type
        from pg_namespace as ns
        cross join lateral aclexplode(ns.nspacl) as acl
        left join pg_roles as grantee on grantee.oid = acl.grantee
        where ns.nspname = %s and acl.grantee <> ns.nspowner
        """,
        [schema],
    ).fetchall()
    return {(grantee, privilege) for grantee, privilege in rows}


def _default_grants(pg: psycopg.Connection, schema: str) -> set[tuple[str, str, str, str]]:
    """(owner role, object type, grantee, privilege) of the default privileges set IN SCHEMA."""
    rows = pg.execute(
        """
        select owner.rolname, defaults.defaclobjtype::text, coalesce(grantee.rolname, 'public'), acl.privilege_type
        from pg_default_acl as defaults
        join pg_namespace as ns on ns.oid = defaults.defaclnamespace
        join pg_roles as owner on owner.oid = defaults.defaclrole
        cross join lateral aclexplode(defaults.defaclacl) as acl
        left join pg_roles as grantee on grantee.oid = acl.grantee
        where ns.nspname = %s
        """,
        [schema],
    ).fetchall()
    return {tuple(row) for row in rows if row[1] in DEFAULT_ACL_OBJECTS}


def _grantee(name: str) -> sql.Composable:
    return sql.SQL("public") if name == "public" else sql.Identifier(name)


def _unmanaged(grants: set, grantee_at: int) -> set:
    """The grants to roles gridcredit.access does not manage (public is managed: access revokes it)."""
    from gridcredit import access

    managed = {*access.ALL_ROLES, "public"}
    return {grant for grant in grants if grant[grantee_at] not in managed}


def _sync(pg: psycopg.Connection, have: set, want: set, statement: str, parts) -> None:
    """Revoke what ``have`` has beyond ``want``, grant what it lacks: ``statement`` names the verb's
    place ``{verb}`` and the grantee's preposition ``{to}``; ``parts(item)`` gives its other fields."""
    for verb, to, items in (("revoke", "from", have - want), ("grant", "to", want - have)):
        for item in sorted(items):
            pg.execute(sql.SQL(statement).format(verb=sql.SQL(verb), to=sql.SQL(to), **parts(item)))


def _set_schema_grants(pg: psycopg.Connection, schema: str, have: set, want: set) -> None:
    _sync(
        pg,
        have,
        want,
        "{verb} {privilege} on schema {schema} {to} {grantee}",
        lambda item: {"privilege": sql.SQL(item[1]), "schema": sql.Identifier(schema), "grantee": _grantee(item[0])},
    )


def _set_default_grants(pg: psycopg.Connection, schema: str, have: set, want: set) -> None:
    _sync(
        pg,
        have,
        want,
        "alter default privileges for role {owner} in schema {schema} {verb} {privilege} on {kind} {to} {grantee}",
        lambda item: {
            "owner": sql.Identifier(item[0]),
            "schema": sql.Identifier(schema),
            "privilege": sql.SQL(item[3]),
            "kind": sql.SQL(DEFAULT_ACL_OBJECTS[item[1]]),
            "grantee": _grantee(item[2]),
        },
    )


def _table_access(pg: psycopg.Connection, schema: str) -> tuple[dict, dict, dict]:
    """Per relation of a schema: its unmanaged grants (grantee, privilege), RLS flags, unmanaged policies."""
    from gridcredit import access

    grants: dict[str, set[tuple[str, str]]] = {}
    flags: dict[str, tuple[bool, bool]] = {}
    for name, grantee, privilege, rls, force in pg.execute(
        """
        select cls.relname, coalesce(grantee.rolname, 'public'), acl.privilege_type,
            cls.relrowsecurity, cls.relforcerowsecurity
        from pg_class as cls
        join pg_namespace as ns on ns.oid = cls.relnamespace
        left join lateral aclexplode(cls.relacl) as acl on true
        left join pg_roles as grantee on grantee.oid = acl.grantee
        where ns.nspname = %s and cls.relkind in ('r', 'p', 'v', 'm')
            and (acl.grantee is null or acl.grantee <> cls.relowner)
        """,
        [schema],
    ).fetchall():
        grants.setdefault(name, set())
        if privilege is not None:
            grants[name].add((grantee, privilege))
        flags[name] = (rls, force)
    grants = {name: _unmanaged(held, 0) for name, held in grants.items()}
    policies: dict[str, list[tuple]] = {}
    for row in pg.execute(
        "select tablename, policyname, permissive, roles::text[], cmd, qual, with_check"
        " from pg_policies where schemaname = %s and policyname <> all(%s) order by tablename, policyname",
        [schema, [access.ANALYST_POLICY, access.READERS_POLICY]],
    ).fetchall():
        policies.setdefault(row[0], []).append(row[1:])
    return grants, flags, policies


def _carry_table_access(pg: psycopg.Connection, schema: str, old: tuple[dict, dict, dict]) -> None:
    """Give the tables just switched in the unmanaged grants, RLS and policies their predecessors had.

    A grant every old table had (``grant select on all tables in schema ...``) also goes to new
    tables; grants the build gave (dbt ``grants``, default privileges) are kept.
    """
    old_grants, old_flags, old_policies = old
    new_grants, new_flags, new_policies = _table_access(pg, schema)
    common = set.intersection(*old_grants.values()) if old_grants else set()
    for table in sorted(new_grants):
        target = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))
        for grantee, privilege in sorted(old_grants.get(table, common) - new_grants[table]):
            pg.execute(sql.SQL("grant {} on {} to {}").format(sql.SQL(privilege), target, _grantee(grantee)))
        rls, force = old_flags.get(table, (False, False))
        if rls and not new_flags[table][0]:
            pg.execute(sql.SQL("alter table {} enable row level security").format(target))
        if force and not new_flags[table][1]:
            pg.execute(sql.SQL("alter table {} force row level security").format(target))
        present = {policy[0] for policy in new_policies.get(table, [])}
        for name, permissive, roles, command, using, check in old_policies.get(table, []):
            if name in present:
                continue
            statement = sql.SQL("create policy {} on {} as {} for {} to {}").format(
                sql.Identifier(name),
                target,
                sql.SQL(permissive.lower()),
                sql.SQL(command.lower()),
                sql.SQL(", ").join(_grantee(role) for role in roles),
            )
            if using is not None:
                statement += sql.SQL(" using ({})").format(sql.SQL(using))
            if check is not None:
                statement += sql.SQL(" with check ({})").format(sql.SQL(check))
            pg.execute(statement)


def _carry_unmanaged_access(pg: psycopg.Connection, schema: str, build: str, published: dict) -> None:
    """After the renames: what a DBA granted beyond gridcredit's rules follows the published name.

    ``published``: the unmanaged schema grants, default privileges and table access the published
    schema had before the switch (the build area's own unmanaged grants stay with the build area).
    """
    build_grants, build_defaults = _unmanaged(_schema_grants(pg, schema), 0), _unmanaged(_default_grants(pg, schema), 2)
    _set_schema_grants(pg, schema, have=build_grants, want=published["grants"])
    _set_schema_grants(pg, build, have=published["grants"], want=build_grants)
    # Default privileges shape the tables the *next* build creates in the build area: the build
    # area (the schema switched out) keeps the published ones, and the published name gets them too.
    _set_default_grants(pg, schema, have=build_defaults, want=published["defaults"])
    _carry_table_access(pg, schema, published["tables"])


def _drop_dbt_leftovers(pg: psycopg.Connection, schemas: list[str]) -> list[str]:
    """Relations a killed dbt run left in the build area (``x__dbt_tmp``, ``x__dbt_backup``)."""
    rows = pg.execute(
        """
        select ns.nspname, cls.relname, cls.relkind
        from pg_class as cls
        join pg_namespace as ns on ns.oid = cls.relnamespace
        where ns.nspname = any(%s) and cls.relkind in ('r', 'v', 'm', 'p') and cls.relname ~ '__dbt_(tmp|backup)$'
        order by 1, 2
        """,
        [[schema + BUILD_SUFFIX for schema in schemas]],
    ).fetchall()
    kinds = {"r": "table", "p": "table", "v": "view", "m": "materialized view"}
    for schema, name, kind in rows:
        pg.execute(
            sql.SQL("drop {} if exists {}.{} cascade").format(
                sql.SQL(kinds[kind]), sql.Identifier(schema), sql.Identifier(name)
            )
        )
    return [f"{schema}.{name}" for schema, name, _ in rows]


def _lock_switched_in_tables(pg: psycopg.Connection, schemas: list[str]) -> None:
    """Lock every table now published under ``schemas`` before writing any grant or policy on one.

    The tables just switched in may get grants, row-level security and policies (ADR 0115: those dbt
    rebuilt get all of them). A grant rewrites the table's ``pg_class`` row; an autovacuum of that table
    then waits for this transaction to update the row, while ``alter table`` or ``create policy`` would
    wait for the autovacuum: a deadlock (seen in session 19's 30k full run). Taken first, the lock waits
    for a running autovacuum instead (which PostgreSQL cancels for it) and keeps new ones out.
    Nobody reads these tables under their published names before the commit.
    """
    tables = pg.execute(
        "select format('%%I.%%I', ns.nspname, cls.relname) from pg_class as cls"
        " join pg_namespace as ns on ns.oid = cls.relnamespace"
        " where ns.nspname = any(%s) and cls.relkind in ('r', 'p') order by 1",
        [schemas],
    ).fetchall()
    if tables:
        pg.execute(
            sql.SQL("lock table {} in access exclusive mode").format(
                sql.SQL(", ").join(sql.SQL(name) for (name,) in tables)
            )
        )


def apply_access_policies(pg: psycopg.Connection, schemas: list[str]) -> None:
    """Re-apply the access rules of the published schemas inside the switch transaction.

    The roles, grants and row-level security policies are defined by ``gridcredit.access``
    (issue 7, "Access", ADR 0080): ``apply_access(pg, schemas)`` runs here, without committing; it is
    the only path for the roles gridcredit manages. Never optional: a skipped grant or policy is a
    security bug.
    """
    from gridcredit import access

    access.apply_access(pg, [*schemas, "ml"])


def publish(conn: warehouse.Connection, run_id: int | None = None) -> Publication:
    """Switch every build area in; all or nothing (one transaction), retried on lock conflicts.

    At 10k customers the switch once died with DeadlockDetected inside the grants and row-level
    security it re-applies (bench run of 2026-11-29 07:54, docs/BENCHMARKS.md). The likely other
    party is autovacuum: in current PostgreSQL releases its in-place update of a table's pg_class row
    waits for the transaction that changed that row (our GRANT), while it holds a lock our ALTER TABLE
    needs. Writers holding locks on the ML tables (which keep their OIDs) are the other kind. Since ADR
    0115 the grant pass writes only what differs, so neither should happen in a steady state. The
    transaction is all or nothing, so running it again from the start is safe.
    """
    cfg = publish_settings()
    for attempt in range(1, cfg.attempts + 1):
        try:
            publication = _publish_once(conn, run_id, cfg.lock_timeout)
        except (psycopg.errors.LockNotAvailable, psycopg.errors.DeadlockDetected) as exc:
            deadlock = isinstance(exc, psycopg.errors.DeadlockDetected)
            what = "deadlock" if deadlock else f"lock wait over {cfg.lock_timeout}"
            detail = (exc.diag.message_detail or "").replace("\n", " ")
            holders = _lock_holders(conn)
            listed = "".join(f"\n  - {line}" for line in holders) or "\n  - (none left now)"
            if attempt == cfg.attempts:
                raise PublishConflictError(
                    f"publish gave up after {attempt} attempt(s): {what}; nothing was published (the published"
                    f" schemas are unchanged). {detail}\nSessions holding locks on published tables:{listed}\n"
                    "Let them finish (or end them) and rerun `gridcredit run`: it resumes at the publish stage."
                ) from exc
            wait = cfg.backoff_s * attempt
            sys.stderr.write(
                f"publish attempt {attempt}/{cfg.attempts}: {what}, rolled back; retrying in {wait:g} s."
                f" {detail}\nSessions holding locks on published tables:{listed}\n"
            )
            _backoff(wait)
            continue
        publication.attempts = attempt
        return publication
    raise AssertionError("unreachable")


def _publish_once(conn: warehouse.Connection, run_id: int | None, lock_timeout: str) -> Publication:
    from gridcredit.ml.writeback import publish_build_area

    with warehouse.connect(conn) as pg:
        pg.execute(PUBLICATIONS_DDL)
        pg.commit()
        # For this transaction only: wait this long for any one lock, then fail (and retry) instead
        # of queueing every reader of the published tables behind the switch.
        pg.execute("select set_config('lock_timeout', %s, true)", [lock_timeout])
        schemas = build_areas(pg)
        faults.fault_point("publish", "begin")
        leftovers = _drop_dbt_leftovers(pg, schemas)
        existing = {
            name for (name,) in pg.execute("select nspname from pg_namespace where nspname = any(%s)", [schemas])
        }
        swapped: dict[str, dict] = {}
        for schema in schemas:
            build = schema + BUILD_SUFFIX
            if schema not in existing:  # the first publication: nothing to swap with
                rename = sql.SQL("alter schema {} rename to {}")
                pg.execute(rename.format(sql.Identifier(build), sql.Identifier(schema)))
                continue
            swapped[schema] = {
                "grants": _unmanaged(_schema_grants(pg, schema), 0),
                "defaults": _unmanaged(_default_grants(pg, schema), 2),
                "tables": _table_access(pg, schema),
            }
            previous = schema + "__previous"
            pg.execute(sql.SQL("alter schema {} rename to {}").format(sql.Identifier(schema), sql.Identifier(previous)))
            pg.execute(sql.SQL("alter schema {} rename to {}").format(sql.Identifier(build), sql.Identifier(schema)))
            pg.execute(sql.SQL("alter schema {} rename to {}").format(sql.Identifier(previous), sql.Identifier(build)))
        _lock_switched_in_tables(pg, schemas)
        for schema in schemas:
            if schema in swapped:
                _carry_unmanaged_access(pg, schema, schema + BUILD_SUFFIX, swapped[schema])
            faults.fault_point("publish", schema)
        apply_access_policies(pg, schemas)
        ml_rows = publish_build_area(pg, commit=False)
        pg.execute(
            "insert into ops.publications (run_id, schemas, ml_rows_inserted) values (%s, %s, %s::jsonb)",
            [run_id, schemas, json.dumps(ml_rows)],
        )
        faults.fault_point("publish", "commit")
        pg.commit()
    return Publication(schemas, ml_rows, leftovers)


# -- catching the build area up with the published state ----------------------------------------
# After a switch the build area holds the state published one run earlier (on the very first
# publication: nothing). dbt's incremental marts compare their own rows with the load ledger, so they
# would redo, in every run, the months the previous run already built and published (after the first
# run: all of history). Copying those months from the published table is far cheaper than computing
# them again, and gives the same rows: an incremental model's rows of a month are a function of the
# loads up to that month's `source_load_id` (docs/decisions/0011, 0017, 0094).


@dataclass
class IncrementalMart:
    schema: str  # the published schema, e.g. marts_core
    table: str
    month_column: str  # the model's unique_key: whole months are replaced (delete+insert)
    # False (`meta.build_area_catch_up: false`): a build table that exists is left for dbt to bring up
    # to date. For a model that rebuilds many months each run, copying the months the last run rebuilt
    # costs more than rebuilding one month more (fct_customer_month_labels, docs/decisions/0114).
    copy_months: bool = True


def incremental_marts(manifest: dict) -> list[IncrementalMart]:
    """The incremental models dbt builds into a published schema's build area (from manifest.json)."""
    marts = []
    for node in manifest.get("nodes", {}).values():
        config = node.get("config") or {}
        if node.get("resource_type") != "model" or config.get("materialized") != "incremental":
            continue
        schema = node.get("schema", "").removesuffix(BUILD_SUFFIX)
        key = config.get("unique_key")
        if not PUBLISHED_SCHEMA.match(schema) or not isinstance(key, str):
            continue
        copy_months = (config.get("meta") or {}).get("build_area_catch_up", True) is not False
        marts.append(IncrementalMart(schema, node.get("alias") or node["name"], key, copy_months))
    return sorted(marts, key=lambda mart: (mart.schema, mart.table))


def _columns(pg: psycopg.Connection, schema: str, table: str) -> list[tuple[str, str]]:
    return pg.execute(
        """
        select attname, format_type(atttypid, atttypmod) from pg_attribute
        where attrelid = to_regclass(format('%%I.%%I', %s::text, %s::text)) and attnum > 0 and not attisdropped
        order by attnum
        """,
        [schema, table],
    ).fetchall()


def catch_up_build_area(
    conn: warehouse.Connection,
    marts: list[IncrementalMart],
    work_as: str | None = "dbt",
    replace_all: bool = False,
) -> dict:
    """Copy into each incremental mart's build table the months the published table holds newer.

    A month is copied when the published table holds it from a load newer than the build table's
    newest (``source_load_id``; ADR 0116); a build table newer than the published one (a run that
    stopped before its publish) is kept. Each table is caught up in its own transaction, as the role
    dbt works as (so dbt owns what it finds). Tables whose columns differ (a code change: dbt's
    ``on_schema_change='fail'`` decides) are left alone. Returns {"schema.table": rows copied}. Only
    a shortcut: an incremental model is correct from any older state, so a kill here, or skipping
    this, changes no result.

    ``replace_all``: the build tables were built by other dbt code than the published ones (the run
    after a full refresh, ADR 0095): each is dropped and copied whole from the published table, since
    rows of an equal load would otherwise be kept.
    """
    from gridcredit import access

    copied: dict[str, int] = {}
    with warehouse.connect(conn) as pg:
        if work_as:
            access.work_as(pg, work_as)
        for mart in marts:
            build = mart.schema + BUILD_SUFFIX
            published_columns = _columns(pg, mart.schema, mart.table)
            names = {name for name, _ in published_columns}
            if not published_columns or not {"source_load_id", mart.month_column} <= names:
                continue
            published = sql.Identifier(mart.schema, mart.table)
            target = sql.Identifier(build, mart.table)
            build_columns = _columns(pg, build, mart.table)
            if replace_all and build_columns:
                pg.execute(sql.SQL("drop table {} cascade").format(target))
                build_columns = []
            if not build_columns:
                # The first publication left no build area: start it as a copy of the published table
                # (columns, constraints, indexes, comments), as dbt's own build would have made it.
                pg.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(build)))
                pg.execute(sql.SQL("create table {} (like {} including all)").format(target, published))
            elif build_columns != published_columns or not mart.copy_months:
                continue
            month = sql.Identifier(mart.month_column)
            # The question dbt's incremental models ask (reprocess_from_month): which loads has the
            # build table not seen? A table whose newest load is N holds every month as of all loads up
            # to N, so the months to copy are those the published table holds from a load above N. Both
            # reads go through the `source_load_id` index every incremental mart has (ADR 0109); a
            # compare of every month's newest load read both tables whole (ADR 0116).
            newest_in_build = pg.execute(sql.SQL("select max(source_load_id) from {}").format(target)).fetchone()[0]
            newer_loads_only = (
                sql.SQL("")
                if newest_in_build is None
                else sql.SQL(" where source_load_id > {}").format(sql.Literal(newest_in_build))
            )
            months = [
                row[0]
                for row in pg.execute(
                    sql.SQL("select distinct {} from {}{}").format(month, published, newer_loads_only)
                ).fetchall()
            ]
            if months:
                pg.execute(sql.SQL("delete from {} where {} = any(%s)").format(target, month), [months])
                cursor = pg.execute(
                    sql.SQL("insert into {} select * from {} where {} = any(%s)").format(target, published, month),
                    [months],
                )
                copied[f"{mart.schema}.{mart.table}"] = cursor.rowcount
                pg.execute(sql.SQL("analyze {}").format(target))
            pg.commit()
    return copied
