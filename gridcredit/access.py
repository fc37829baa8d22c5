"""Least privilege in the warehouse: roles, schema grants, default privileges, row-level security.

One function, :func:`apply_access`, (re)applies everything on an open connection without committing,
so write-audit-publish calls it inside its publish transaction and the pipeline calls it before every
dbt phase: a dbt rebuild (new tables) or a schema switch (new schemas) never leaves a relation with the
wrong grants or without its row-level security. ``gridcredit warehouse init-sql`` prints the static part
of the same statements for a DBA setting up an external PostgreSQL (:func:`init_sql`).

Roles (NOLOGIN groups; people and services log in as their own roles and are made members):

==========================  =====================================================================
gridcredit_loader           writes raw_* (and its load ledger in ops); reads nothing else
gridcredit_transformer      dbt: reads raw_*, ops, ml, decisions; writes staging, intermediate,
                            marts_*, reference, restricted (owns what it builds)
gridcredit_ml               reads the feature mart (marts_ml); writes ml
bi_reader                   Superset's login role (gridcredit/bi.py): reads published schemas only
gridcredit_analyst          reads published schemas; region_code tables filtered by row-level
                            security to the regions listed for the analyst in access.analyst_regions
gridcredit_restricted       reads the restricted schema (clear personal data); nothing else
==========================  =====================================================================

The matrix is asserted as a literal table in tests/test_access.py.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from dataclasses import dataclass

import psycopg
from psycopg import sql

from gridcredit import settings, warehouse

LOADER = "gridcredit_loader"
TRANSFORMER = "gridcredit_transformer"
ML = "gridcredit_ml"
BI_READER = "bi_reader"
ANALYST = "gridcredit_analyst"
RESTRICTED = "gridcredit_restricted"
GROUP_ROLES = (LOADER, TRANSFORMER, ML, ANALYST, RESTRICTED)
ALL_ROLES = (*GROUP_ROLES, BI_READER)
# The role each pipeline stage works as (`set role` after connecting): gridcredit.yaml
# access.<stage>_role, GRIDCREDIT_<STAGE>_ROLE overrides; empty = the login role.
STAGE_ROLES = {"dbt": TRANSFORMER, "ingest": LOADER, "ml": ML}

RAW_SCHEMAS = ("raw_billing", "raw_metering", "raw_inspection", "raw_registry", "raw_macro")
PUBLISHED_MARTS = ("marts_core", "marts_collections", "marts_groups", "marts_ml", "marts_decisions")
RESTRICTED_SCHEMA = "restricted"
ACCESS_SCHEMA = "access"


@dataclass(frozen=True)
class SchemaRule:
    """Who owns a schema (creates in it) and who reads it. `published`: BI and analysts read it."""

    owner: str | None  # None: the warehouse owner (the connection that runs apply_access)
    writers: tuple[str, ...] = ()
    readers: tuple[str, ...] = ()
    published: bool = False


_PUBLISHED_READERS = (BI_READER, ANALYST)

# Fixed schemas, created by apply_access / init-sql so that grants and default privileges exist before
# the first relation does. Build schemas of write-audit-publish (`<schema>__build`) follow their
# published schema's rule for writers and readers among the pipeline roles, never for BI/analysts.
SCHEMA_RULES: dict[str, SchemaRule] = {
    **{name: SchemaRule(LOADER, readers=(TRANSFORMER,)) for name in RAW_SCHEMAS},
    "ops": SchemaRule(None, writers=(LOADER,), readers=(TRANSFORMER,)),
    "staging": SchemaRule(TRANSFORMER),
    "intermediate": SchemaRule(TRANSFORMER),
    **{
        name: SchemaRule(TRANSFORMER, readers=(*_PUBLISHED_READERS, ML) if name == "marts_ml" else (), published=True)
        for name in PUBLISHED_MARTS
    },
    "reference": SchemaRule(TRANSFORMER, published=True),
    RESTRICTED_SCHEMA: SchemaRule(TRANSFORMER, readers=(RESTRICTED,)),
    "ml": SchemaRule(ML, readers=(TRANSFORMER,), published=True),
    "whatif": SchemaRule(None, published=True),
    "decisions": SchemaRule(TRANSFORMER),
    ACCESS_SCHEMA: SchemaRule(None, readers=(ANALYST,)),
}


def schema_rule(schema: str) -> SchemaRule | None:
    """The rule of a schema, build schemas (`x__build`, `x__anything`) included; None if unmanaged."""
    base, _, suffix = schema.partition("__")
    rule = SCHEMA_RULES.get(base)
    if rule is None:
        return None
    if suffix:
        # Not published yet: pipeline roles only.
        return SchemaRule(rule.owner, rule.writers, tuple(r for r in rule.readers if r not in _PUBLISHED_READERS))
    return rule


def _readers(rule: SchemaRule) -> tuple[str, ...]:
    readers = set(rule.readers)
    if rule.published:
        readers.update(_PUBLISHED_READERS)
    return tuple(sorted(readers))


def _role_statements() -> list[str]:
    statements = []
    for role in ALL_ROLES:
        statements.append(
            "do $$ begin\n"
            f"  if not exists (select from pg_roles where rolname = '{role}') then\n"
            f"    create role {role} nologin nosuperuser nocreatedb nocreaterole noinherit;\n"
            "  end if;\n"
            "exception when duplicate_object or unique_violation then null;  -- created concurrently\n"
            "end $$;"
        )
    return statements


def _schema_statements(schema: str, rule: SchemaRule, creators: tuple[str, ...], owner_role: str | None) -> list[str]:
    """Grants and default privileges of one schema; `creators`: roles that create relations there."""
    s = sql.Identifier(schema).as_string(None)
    out = [f"revoke all on schema {s} from public;"]
    owner = rule.owner or owner_role
    for writer in rule.writers:
        out.append(f"grant usage, create on schema {s} to {writer};")
    for reader in _readers(rule):
        out.append(f"grant usage on schema {s} to {reader};")
    for creator in creators:
        prefix = f"alter default privileges for role {creator} in schema {s}"
        for writer in {*rule.writers, *([owner] if owner and owner != creator and owner in GROUP_ROLES else [])}:
            out.append(f"{prefix} grant select, insert, update, delete, truncate on tables to {writer};")
            out.append(f"{prefix} grant usage, select on sequences to {writer};")
        for reader in _readers(rule):
            # Analysts get table access only from apply_access, after row-level security is on.
            if reader != ANALYST:
                out.append(f"{prefix} grant select on tables to {reader};")
    return out


def static_statements(dbname: str, owner_role: str | None = None) -> list[str]:
    """Roles, database grants, the fixed schemas, their grants and default privileges."""
    db = sql.Identifier(dbname).as_string(None)
    out = _role_statements()
    out.append(f"revoke create, temporary on database {db} from public;")
    for role in ALL_ROLES:
        out.append(f"grant connect on database {db} to {role};")
    # Schemas of their own (dbt and write-audit-publish build areas): transformer, ml, loader.
    for role in (LOADER, TRANSFORMER, ML):
        out.append(f"grant create, temporary on database {db} to {role};")
    out.append("revoke create on schema public from public;")
    for schema, rule in SCHEMA_RULES.items():
        owner = rule.owner
        out.append(f"create schema if not exists {schema}" + (f" authorization {owner};" if owner else ";"))
        if owner:
            # A schema created earlier by the warehouse owner (e.g. ingest before the first grants).
            out.append(
                f"do $$ begin if (select nspowner::regrole::text from pg_namespace where nspname = '{schema}')"
                f" = current_user then alter schema {schema} owner to {owner}; end if; end $$;"
            )
        creators = tuple(dict.fromkeys(c for c in (owner_role, owner, *rule.writers) if c))
        out.extend(_schema_statements(schema, rule, creators, owner_role))
    for schema in sorted({schema for schema, _ in PERSONAL_TABLES}):
        out.append(f"grant usage on schema {schema} to {RESTRICTED};")  # its personal tables only (below)
    out.append(
        f"create table if not exists {ACCESS_SCHEMA}.analyst_regions (\n"
        "    analyst_role name not null,\n"
        "    region_code text not null,  -- '*' = every region\n"
        "    primary key (analyst_role, region_code)\n"
        ");"
    )
    out.append(
        f"comment on table {ACCESS_SCHEMA}.analyst_regions is 'Supply regions each analyst login role may read "
        "(row-level security on published tables with region_code); * = all regions.';"
    )
    out.append(f"grant select on {ACCESS_SCHEMA}.analyst_regions to {ANALYST};")
    return out


# Tables holding clear personal values outside the restricted schema: the raw lines of rejected rows
# (kept so a data steward can correct the source). Readable by the restricted role only.
PERSONAL_TABLES = {("ops", "load_rejects")}

ANALYST_POLICY = "gridcredit_analyst_regions"
READERS_POLICY = "gridcredit_readers_all_rows"


# A policy's digest: what PostgreSQL holds for it (command, roles, expressions). The grant pass writes it
# into the policy's comment with the digest of the statement that created it, and leaves the policy alone
# while both still match (ADR 0115).
_POLICY_DIGEST = (
    "md5(concat_ws('|', p.polcmd, p.polpermissive, p.polroles::regrole[]::text,"
    " pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid)))"
)
_POLICY_MARK = "gridcredit access"
_TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE")
_SEQUENCE_PRIVILEGES = ("USAGE", "SELECT")


@dataclass(frozen=True)
class RelationState:
    """A managed relation as the catalogue holds it now."""

    schema: str
    name: str
    kind: str  # pg_class.relkind
    has_region: bool
    owner: str
    row_security: bool
    privileges: frozenset[tuple[str, str]]  # (grantee, privilege), the owner's own excluded; PUBLIC = 'public'
    policy_comments: dict[str, str]  # policy name -> its comment as it should read if untouched since written


def _current_state(pg: psycopg.Connection) -> tuple[list[str], list[RelationState]]:
    """Managed schemas present now, and the state of their relations."""
    schemas = [
        row[0]
        for row in pg.execute(
            "select nspname from pg_namespace where nspname !~ '^(pg_|information_schema)' order by 1"
        ).fetchall()
        if schema_rule(row[0]) is not None
    ]
    rows = pg.execute(
        f"""
        select n.nspname, c.relname, c.relkind,
               exists (select from pg_attribute a where a.attrelid = c.oid and a.attname = 'region_code'
                       and not a.attisdropped),
               c.relowner::regrole::text,
               c.relrowsecurity,
               array(select case when acl.grantee = 0 then 'public' else acl.grantee::regrole::text end
                            || ' ' || acl.privilege_type
                     from aclexplode(c.relacl) as acl where acl.grantee <> c.relowner),
               array(select p.polname || ' ' || coalesce(obj_description(p.oid, 'pg_policy'), '')
                            || ' ' || {_POLICY_DIGEST}
                     from pg_policy as p where p.polrelid = c.oid)
        from pg_class as c join pg_namespace as n on n.oid = c.relnamespace
        where n.nspname = any(%s) and c.relkind in ('r', 'p', 'v', 'm', 'S', 'f')
          and not c.relispartition
        order by 1, 2
        """,
        [schemas],
    ).fetchall()
    relations = []
    for schema, name, kind, has_region, owner, row_security, privileges, policies in rows:
        comments = {}
        for entry in policies:
            # "<name> <comment> <digest now>": untouched when the comment ends with the digest now.
            policy, _, rest = entry.partition(" ")
            comment, _, digest = rest.rpartition(" ")
            comments[policy] = comment if comment.endswith(f" {digest}") else ""
        relations.append(
            RelationState(
                schema,
                name,
                kind,
                has_region,
                owner,
                row_security,
                frozenset(tuple(entry.split(" ", 1)) for entry in privileges),
                comments,
            )
        )
    return schemas, relations


def _statement_mark(statement: str) -> str:
    return hashlib.md5(statement.encode()).hexdigest()


def _policy_statements(rel: str, policy: str, create: str, comment_now: str) -> list[str]:
    """Drop and create one policy unless it still is what `create` made; comment it with both digests."""
    mark = f"{_POLICY_MARK} {_statement_mark(create)}"
    if comment_now.rpartition(" ")[0] == mark:
        return []
    literal_rel = sql.Literal(rel).as_string(None)
    literal_policy = sql.Literal(policy).as_string(None)
    return [
        f"drop policy if exists {policy} on {rel};",
        create,
        "do $$ begin execute format('comment on policy %I on %s is %L', "
        f"{literal_policy}, {literal_rel}, {sql.Literal(mark + ' ').as_string(None)} || "
        f"(select {_POLICY_DIGEST} from pg_policy as p where p.polrelid = {literal_rel}::regclass"
        f" and p.polname = {literal_policy})); end $$;",
    ]


def relation_statements(relations: list[RelationState], owner_role: str) -> list[str]:
    """The statements that bring each relation to its schema's rule; none for a relation already there.

    Each pass used to grant, enable row-level security and drop and create both policies on every relation.
    Those writes to the catalogue and the exclusive locks of the policy statements cost seconds per pass
    and deadlocked with autovacuum (ADR 0090). Now only what differs is written (ADR 0115).
    """
    out: list[str] = []
    exclusive: list[str] = []
    for state in relations:
        rel = f"{sql.Identifier(state.schema).as_string(None)}.{sql.Identifier(state.name).as_string(None)}"
        statements = _statements_of(state, rel, owner_role)
        # tables only: LOCK TABLE refuses sequences and would also lock a view's base tables
        if state.kind in ("r", "p") and any(statement.startswith(_EXCLUSIVE_STATEMENTS) for statement in statements):
            exclusive.append(rel)
        out.extend(statements)
    if exclusive:
        # Locks first, before any grant rewrites a pg_class row: an autovacuum of a relation whose row
        # this transaction rewrote waits for it, and a later `alter table` there would wait for the
        # autovacuum (the deadlock of ADR 0090). Taken first, the lock waits for the autovacuum instead.
        out.insert(0, f"lock table {', '.join(exclusive)} in access exclusive mode;")
    return out


_EXCLUSIVE_STATEMENTS = ("alter table", "drop policy", "create policy")


def _statements_of(state: RelationState, rel: str, owner_role: str) -> list[str]:
    """What one relation needs to match its schema's rule (see relation_statements)."""
    out: list[str] = []
    rule = schema_rule(state.schema)
    if state.kind == "S":  # sequences: grants only (a serial column's sequence follows its table's owner)
        for writer in rule.writers:
            if writer != state.owner and any((writer, p) not in state.privileges for p in _SEQUENCE_PRIVILEGES):
                out.append(f"grant usage, select on sequence {rel} to {writer};")
        return out
    owner = rule.owner
    held, new_owner = state.privileges, state.owner
    if owner in GROUP_ROLES and state.owner != owner and state.owner == owner_role:
        # Relations created by the warehouse owner (older warehouses, or a stage still running as
        # the owner) go to the schema's owning role, so dbt/ML can replace them. The owner's grants
        # move with it: grant everything again.
        out.append(f"alter table {rel} owner to {owner};")
        held, new_owner = frozenset(), owner

    def lacks(grantee: str, privileges: tuple[str, ...], held=held, new_owner=new_owner) -> bool:
        return grantee != new_owner and any((grantee, p) not in held for p in privileges)

    if any(grantee == "public" for grantee, _ in state.privileges):
        out.append(f"revoke all on {rel} from public;")
    for writer in rule.writers:
        if lacks(writer, _TABLE_PRIVILEGES):
            out.append(f"grant select, insert, update, delete, truncate on {rel} to {writer};")
    readers = _readers(rule)
    if (state.schema, state.name) in PERSONAL_TABLES:
        for reader in readers:
            if any(grantee == reader for grantee, _ in state.privileges):
                out.append(f"revoke all on {rel} from {reader};")
        if lacks(RESTRICTED, ("SELECT",)):
            out.append(f"grant select on {rel} to {RESTRICTED};")
        return out
    secured = rule.published and state.has_region and state.kind in ("r", "p")
    for reader in readers:
        if reader == ANALYST and rule.published and state.has_region and not secured:
            continue  # views/matviews with region_code cannot carry row-level security: not granted
        if lacks(reader, ("SELECT",)):
            out.append(f"grant select on {rel} to {reader};")
    if secured:
        if not state.row_security:
            out.append(f"alter table {rel} enable row level security;")
        full_readers = ", ".join(dict.fromkeys(r for r in (*readers, TRANSFORMER) if r != ANALYST))
        out.extend(
            _policy_statements(
                rel,
                READERS_POLICY,
                f"create policy {READERS_POLICY} on {rel} for select to {full_readers} using (true);",
                state.policy_comments.get(READERS_POLICY, ""),
            )
        )
        out.extend(
            _policy_statements(
                rel,
                ANALYST_POLICY,
                f"create policy {ANALYST_POLICY} on {rel} for select to {ANALYST} using ("
                f"exists (select from {ACCESS_SCHEMA}.analyst_regions as r where r.analyst_role = current_user"
                f" and (r.region_code = '*' or r.region_code = {sql.Identifier(state.name).as_string(None)}"
                ".region_code)));",
                state.policy_comments.get(ANALYST_POLICY, ""),
            )
        )
    return out


def apply_access(pg: psycopg.Connection, schemas: list[str] | None = None) -> int:
    """(Re)apply roles, grants, default privileges and row-level security; return statements run.

    Runs on `pg` without committing (call it inside the publish transaction). The connection must be
    the warehouse owner (a superuser, or a role that is a member of every group role). `schemas`
    limits the per-relation part to those schemas and their build areas (`<schema>__*`); None = all.
    Relations already as their rule wants them get no statement (ADR 0115).
    """
    dbname = pg.execute("select current_database()").fetchone()[0]
    owner_role = pg.execute("select current_user").fetchone()[0]
    statements = static_statements(dbname, owner_role)
    pg.execute("\n".join(statements))
    wanted = schemas
    schemas, relations = _current_state(pg)
    if wanted is not None:
        keep = set(wanted)
        schemas = [name for name in schemas if name in keep or name.partition("__")[0] in keep]
        relations = [rel for rel in relations if rel.schema in schemas]
    count = len(statements)
    dynamic: list[str] = []
    for schema in schemas:
        rule = schema_rule(schema)
        if schema not in SCHEMA_RULES:  # a build schema or a switched-in one: grants again
            creators = tuple(dict.fromkeys(c for c in (owner_role, rule.owner, *rule.writers) if c))
            dynamic.extend(_schema_statements(schema, rule, creators, owner_role))
            if rule.owner in GROUP_ROLES:
                # A build area the warehouse owner created (an older run): to the stage role that fills it.
                dynamic.append(
                    f"do $$ begin if (select nspowner::regrole::text from pg_namespace where nspname = "
                    f"{sql.Literal(schema).as_string(None)}) = current_user then alter schema "
                    f"{sql.Identifier(schema).as_string(None)} owner to {rule.owner}; end if; end $$;"
                )
            # A build area may be the previously published schema (swapped out): readers leave it.
            quoted = sql.Identifier(schema).as_string(None)
            dynamic.append(f"revoke all on schema {quoted} from {BI_READER}, {ANALYST};")
    dynamic.extend(relation_statements(relations, owner_role))
    if dynamic:
        pg.execute("\n".join(dynamic))
    return count + len(dynamic)


def stage_role(stage: str) -> str:
    """The role a stage (``dbt``, ``ingest``, ``ml``) works as; empty = the connection's login role."""
    section = settings.project_config().get("access", {}) or {}
    configured = section.get(f"{stage}_role", STAGE_ROLES[stage])
    return os.environ.get(f"GRIDCREDIT_{stage.upper()}_ROLE", configured) or ""


def work_as(pg: psycopg.Connection, stage: str) -> str:
    """Switch this session to the stage's role (``set role``, committed so a later rollback keeps it).

    Call it right after connecting: from then on the session holds only that role's privileges.
    Returns the role ('' when the stage works as the login role).
    """
    role = stage_role(stage)
    if role:
        pg.execute(sql.SQL("set role {}").format(sql.Identifier(role)))
        if not pg.autocommit:
            pg.commit()
    return role


def grant_attempts() -> int:
    """``access.grant_attempts`` of gridcredit.yaml (GRIDCREDIT_GRANT_ATTEMPTS overrides)."""
    section = settings.project_config().get("access", {}) or {}
    return max(1, int(os.environ.get("GRIDCREDIT_GRANT_ATTEMPTS", section.get("grant_attempts", 5))))


def apply(conn: warehouse.Connection) -> int:
    """apply_access on its own connection and transaction, run again after a deadlock.

    The pass used to alter tables (row-level security, owners) after granting on them, which deadlocked
    with autovacuum (seen at 2,000 customers at the start of a dbt stage, the same pattern as the
    publish switch, ADR 0090). It now locks first and writes only what differs (ADR 0115); the retry
    stays as a safety net. The transaction is all or nothing, so running it again is safe.
    """
    attempts = grant_attempts()
    for attempt in range(1, attempts + 1):
        try:
            return _apply_once(conn)
        except psycopg.errors.DeadlockDetected as exc:
            if attempt == attempts:
                raise RuntimeError(
                    f"grant pass gave up after {attempt} attempt(s): deadlock; nothing was changed"
                    f" (all or nothing). {exc.diag.message_detail or ''}"
                ) from exc
            wait = float(attempt)
            sys.stderr.write(
                f"grant pass attempt {attempt}/{attempts}: deadlock, rolled back; retrying in {wait:g} s.\n"
            )
            _backoff(wait)
    raise AssertionError("unreachable")


def _apply_once(conn: warehouse.Connection) -> int:
    with warehouse.connect(conn) as pg:
        count = apply_access(pg)
        pg.commit()
    return count


def _backoff(seconds: float) -> None:
    time.sleep(seconds)


def init_sql(dbname: str = warehouse.DATABASE, owner_role: str = warehouse.SUPERUSER) -> str:
    """The SQL a DBA runs (as a superuser, with psql) to prepare an external PostgreSQL."""
    lines = [
        "-- gridcredit: database, roles, schemas, grants and default privileges.",
        "-- Run as a superuser with psql:  gridcredit warehouse init-sql | psql -v ON_ERROR_STOP=1 <admin URL>",
        "-- Then give each service its own login role, e.g.:",
        "--   create role gridcredit_dbt login password '...' in role gridcredit_transformer;",
        "--   create role gridcredit_ingest login password '...' in role gridcredit_loader;",
        "-- and record regional analysts in access.analyst_regions (row-level security by supply region).",
        "-- `gridcredit` re-applies table grants and row-level security after every dbt build.",
        "",
        f"select 'create database {sql.Identifier(dbname).as_string(None)}'",
        f"where not exists (select from pg_database where datname = {sql.Literal(dbname).as_string(None)})\\gexec",
        f"\\connect {sql.Identifier(dbname).as_string(None)}",
        "",
        *static_statements(dbname, owner_role),
        "",
    ]
    return "\n".join(lines)
