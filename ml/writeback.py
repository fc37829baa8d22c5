"""Write-back: COPY into the build area ``ml__build``, then one atomic switch into ``ml``.

Staging (slow, may crash), preparing and publishing (fast, one transaction each) are separate:

1. ``BuildArea.reset()`` drops what a crashed run staged and makes every ``ml__build.<table>`` a
   copy of ``ml.<table>`` (the build tables persist: `gridcredit run`'s dbt staging views read them);
   the sync state (ADR 0111) says when they already are, or which keys differ;
2. ``BuildArea.stage(table, frame, scope)`` COPYs a frame into ``ml__build.<table>__staged``
   (unlogged, same columns and primary key, so duplicates fail here, not later);
3. ``BuildArea.prepare()`` applies, in one transaction, the flag updates and every staged scope
   (delete the rows the run replaces, insert the staged rows) to the build tables: ``ml__build``
   now holds the next state of ``ml``, which dbt (the marts that use scores) and their tests read;
   it logs the key of every row it may change;
4. ``publish_build_area()`` makes every ``ml`` table equal its build table (rows compared by key and
   content; only the logged keys when the state allows) in the caller's transaction: `gridcredit
   score` commits it alone, `gridcredit run` together with the dbt marts' schema switch
   (docs/decisions/0090-write-audit-publish.md).

A crash (even SIGKILL) before the commit leaves ``ml`` exactly as it was: PostgreSQL rolls the
open transaction back. Published tables are never dropped or renamed, so dbt staging views,
grants and dashboards that depend on them keep pointing at the same relations (a schema or table
rename would leave views bound to the old relation; see docs/decisions/0031-ml-write-back.md).

Fault injection for tests: ``GRIDCREDIT_KILL_AT=ml:<point>`` kills the process with SIGKILL at a
named point (``stage:<table>`` after a table is staged, ``prepare:commit`` before the build area
commits, ``publish:<table>`` inside the switch after that table was synced, ``publish:commit``
just before the switch commits).
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
from psycopg import sql

from gridcredit import faults
from gridcredit.ml.schema import BUILD_SCHEMA, SCHEMA, TABLES, Table, create_table_sql

COPY_CHUNK_ROWS = 200_000


def fault_point(name: str) -> None:
    """SIGKILL this process when ``GRIDCREDIT_KILL_AT`` is ``ml:<name>`` (tests only)."""
    faults.fault_point("ml", name)


@dataclass
class Scope:
    """The published rows a staged table replaces: ``delete from ml.<table> where <where>``.

    ``Scope.everything()`` replaces the whole table.
    """

    where: sql.Composable
    params: list = field(default_factory=list)

    @classmethod
    def everything(cls) -> Scope:
        return cls(sql.SQL("true"))

    @classmethod
    def equals(cls, **columns) -> Scope:
        parts, params = [], []
        for column, value in columns.items():
            if isinstance(value, list | tuple | set):
                parts.append(sql.SQL("{} = any(%s)").format(sql.Identifier(column)))
                params.append(list(value))
            else:
                parts.append(sql.SQL("{} = %s").format(sql.Identifier(column)))
                params.append(value)
        return cls(sql.SQL(" and ").join(parts) if parts else sql.SQL("true"), params)


def conform(frame: pd.DataFrame, table: Table) -> pd.DataFrame:
    """The frame with exactly the table's columns, in order, typed for COPY (missing -> null)."""
    out = {}
    n = len(frame)
    for column in table.columns:
        values = frame[column.name] if column.name in frame.columns else pd.Series([None] * n, index=frame.index)
        if column.type in ("integer", "bigint"):
            out[column.name] = pd.array(pd.to_numeric(values, errors="raise"), dtype="Int64")
        elif column.type == "double precision":
            out[column.name] = pd.to_numeric(values, errors="raise").astype("float64")
        elif column.type == "boolean":
            out[column.name] = values.astype("boolean")
        elif column.type == "jsonb":
            out[column.name] = values.map(
                lambda v: None if v is None else json.dumps(v, sort_keys=True, default=_json_default)
            )
        elif column.type == "bytea":
            out[column.name] = values.map(lambda v: None if v is None else "\\x" + bytes(v).hex())
        elif column.type == "date":
            days = pd.to_datetime(values).to_numpy(dtype="datetime64[D]")
            text = days.astype(str).astype(object)
            text[np.isnat(days)] = None
            out[column.name] = text
        elif column.type == "timestamptz":
            # Few distinct values (one scoring time per run and month): format each once.
            formatted = {v: pd.Timestamp(v).isoformat() for v in pd.unique(values.dropna())}
            out[column.name] = values.map(formatted).astype(object).where(values.notna(), None)
        else:
            out[column.name] = values.astype("string")
    conformed = pd.DataFrame(out, index=frame.index)
    for column in table.columns:
        if column.not_null and conformed[column.name].isna().any():
            bad = int(conformed[column.name].isna().sum())
            raise ValueError(f"ml.{table.name}.{column.name} must not be null ({bad} null values)")
    return conformed.reset_index(drop=True)


def _json_default(value):
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return None if np.isnan(value) else float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def copy_frame(pg: psycopg.Connection, schema: str, table: Table, frame: pd.DataFrame) -> int:
    """COPY a conformed frame into ``schema.table``.

    CSV written by Arrow's C++ writer (10x pandas' ``to_csv``): doubles in shortest round-trip
    form (exact), strings always quoted and nulls as unquoted empty fields, which PostgreSQL's
    CSV COPY reads as NULL (an empty string stays an empty string).
    """
    columns = sql.SQL(", ").join(sql.Identifier(c) for c in table.column_names)
    statement = sql.SQL("copy {}.{} ({}) from stdin with (format csv)").format(
        sql.Identifier(schema), sql.Identifier(table.name), columns
    )
    options = pacsv.WriteOptions(include_header=False)
    with pg.cursor() as cur, cur.copy(statement) as copy:
        for start in range(0, len(frame), COPY_CHUNK_ROWS):
            chunk = pa.Table.from_pandas(frame.iloc[start : start + COPY_CHUNK_ROWS], preserve_index=False)
            buffer = io.BytesIO()
            pacsv.write_csv(chunk, buffer, write_options=options)
            copy.write(buffer.getvalue())
    return len(frame)


class BuildArea:
    """``ml__build``: the next state of every ``ml`` table, prepared and checked before publishing.

    ``ml__build.<table>`` is a persistent full copy (same columns and primary key as ``ml.<table>``;
    never dropped, because the dbt staging views of `gridcredit run` read it), and
    ``ml__build.<table>__staged`` holds what this run stages.
    """

    def __init__(self, pg: psycopg.Connection):
        self.pg = pg
        self.staged: list[tuple[Table, Scope]] = []
        self.statements: list[tuple[Table, sql.Composable, list]] = []

    def reset(self) -> str:
        """Drop what a crashed run staged; make every build table equal the published one.

        Returns how: ``kept`` (the sync state says they are equal: nothing to do), ``undone`` (a
        prepared but unpublished run's logged keys were copied back from ``ml``) or ``copied``
        (truncate and full copy: the state is unknown). See docs/decisions/0111.
        """
        pg = self.pg
        pg.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(BUILD_SCHEMA)))
        for (leftover,) in pg.execute(
            "select tablename from pg_tables where schemaname = %s and tablename like %s",
            [BUILD_SCHEMA, "%\\_\\_staged"],
        ).fetchall():
            pg.execute(sql.SQL("drop table {}.{}").format(sql.Identifier(BUILD_SCHEMA), sql.Identifier(leftover)))
        for table in TABLES.values():
            pg.execute(create_table_sql(table, BUILD_SCHEMA, with_comments=False))
            for c in table.columns:  # columns added by a later version of ml/schema.py
                pg.execute(f"alter table {BUILD_SCHEMA}.{table.name} add column if not exists {c.name} {c.type}")
            # Truncated at every publication, so never worth vacuuming; an autovacuum on one deadlocked
            # with the publication's truncate (a 30k bench run, session 18: the publish retried, 10 s).
            pg.execute(
                create_table_sql(
                    _changes_table(table), BUILD_SCHEMA, with_comments=False, storage="autovacuum_enabled = false"
                )
            )
        pg.commit()
        tracked = _ensure_sync_tracking(pg)
        _tracking_on(pg)
        state = _sync_state(pg, for_update=True) if tracked else UNKNOWN
        if state == TRACKED:
            for table in TABLES.values():
                _sync_table(pg, table, SCHEMA, BUILD_SCHEMA, changes=True)
            how = "undone"
        elif state == UNKNOWN:
            for table in TABLES.values():
                pg.execute(sql.SQL("truncate {}.{}").format(sql.Identifier(BUILD_SCHEMA), sql.Identifier(table.name)))
                _copy_rows(pg, table, SCHEMA, BUILD_SCHEMA)
            how = "copied"
        else:
            how = "kept"
        if tracked:
            _mark_identical(pg)
        pg.commit()
        self.staged, self.statements = [], []
        return how

    def stage(self, name: str, frame: pd.DataFrame, scope: Scope) -> int:
        """COPY ``frame`` into ``ml__build.<name>__staged``; it will replace ``scope`` of ``<name>``.

        Staging the same table twice appends to it (one scope per call, all applied).
        """
        table = TABLES[name]
        conformed = conform(frame, table)
        staged = Table(f"{name}__staged", table.description, table.columns, table.primary_key)
        if not any(t.name == name for t, _ in self.staged):
            self.pg.execute(create_table_sql(staged, BUILD_SCHEMA, unlogged=True, with_comments=False))
        n = copy_frame(self.pg, BUILD_SCHEMA, staged, conformed)
        self.pg.commit()
        self.staged.append((table, scope))
        fault_point(f"stage:{name}")
        return n

    def discard(self, names: list[str]) -> None:
        """Take back everything staged for the tables ``names`` (rows and the scopes they replace)."""
        for name in names:
            self.pg.execute(
                sql.SQL("drop table if exists {}.{}").format(
                    sql.Identifier(BUILD_SCHEMA), sql.Identifier(f"{name}__staged")
                )
            )
        self.pg.commit()
        self.staged = [(table, scope) for table, scope in self.staged if table.name not in names]

    def add_statement(self, table: str, statement: sql.Composable, params: list | None = None) -> None:
        """A statement on the build table ``table`` to run before the staged rows replace their scopes.

        Write it against schema ``ml``: it runs with ``search_path`` on ``ml__build``, so name the
        tables without a schema (e.g. ``update model_runs set ...``). It may change any row of
        ``table`` (and no other table): the change log takes every key of it.
        """
        self.statements.append((TABLES[table], statement, params or []))

    def prepare(self) -> dict[str, int]:
        """Apply the staged rows to the build tables (one transaction): ``ml__build`` = next state.

        Returns rows inserted per table.
        """
        pg = self.pg
        inserted: dict[str, int] = {}
        names = sorted({t.name for t, _ in self.staged})
        pg.execute(sql.SQL("set local search_path = {}").format(sql.Identifier(BUILD_SCHEMA)))
        _tracking_on(pg)
        state = _sync_state(pg, for_update=True)
        # Log the key of every row this transaction may change, while ml__build equals ml or differs
        # only in logged keys: publish (or the next reset) then compares only those rows (ADR 0111).
        track = state in (IDENTICAL, TRACKED)
        for table, statement, params in self.statements:
            if track:
                _log_changes(pg, table, sql.SQL("select {} from {}").format(_keys(table), _build(table.name)))
            pg.execute(statement, params)
            if track:  # rows the statement inserted
                _log_changes(pg, table, sql.SQL("select {} from {}").format(_keys(table), _build(table.name)))
        for table, scope in self.staged:
            target = _build(table.name)
            if track:
                _log_changes(
                    pg,
                    table,
                    sql.SQL("select {} from {} where {}").format(_keys(table), target, scope.where),
                    scope.params,
                )
            pg.execute(sql.SQL("delete from {} where {}").format(target, scope.where), scope.params)
        for name in names:
            table = TABLES[name]
            columns = sql.SQL(", ").join(sql.Identifier(c) for c in table.column_names)
            staged = _build(f"{name}__staged")
            if track:
                _log_changes(pg, table, sql.SQL("select {} from {}").format(_keys(table), staged))
            cur = pg.execute(
                sql.SQL("insert into {} ({}) select {} from {} order by {}").format(
                    _build(name), columns, columns, staged, _keys(table)
                )
            )
            inserted[name] = cur.rowcount
            pg.execute(sql.SQL("drop table {}").format(staged))
        if state == IDENTICAL and (names or self.statements):
            pg.execute(f"update {SYNC_STATE} set state = %s, changed_at = now()", [TRACKED])
        fault_point("prepare:commit")
        pg.commit()
        # The after-scoring dbt build reads these tables right away, before autovacuum would analyze
        # them: with statistics that end at last month PostgreSQL estimated the new month at one row
        # and joined four score tables by nested loops (one more month at 100k, session 9).
        for name in names:
            pg.execute(sql.SQL("analyze {}.{}").format(sql.Identifier(BUILD_SCHEMA), sql.Identifier(name)))
        pg.commit()
        self.staged, self.statements = [], []
        return inserted

    def publish(self, commit: bool = True) -> dict[str, int]:
        """The atomic switch: make every ``ml`` table equal its build table, in one transaction.

        Rows are compared by primary key and content: only rows that changed are deleted and
        inserted, so the published tables keep their identity (OIDs, grants, policies, dependent
        views). With ``commit=False`` the caller commits (`gridcredit run` switches the dbt marts
        in the same transaction). Returns rows inserted per table.
        """
        if self.staged or self.statements:
            self.prepare()
        return publish_build_area(self.pg, commit=commit)


def _copy_rows(pg: psycopg.Connection, table: Table, source: str, target: str) -> int:
    columns = sql.SQL(", ").join(sql.Identifier(c) for c in table.column_names)
    return pg.execute(
        sql.SQL("insert into {}.{} ({}) select {} from {}.{}").format(
            sql.Identifier(target),
            sql.Identifier(table.name),
            columns,
            columns,
            sql.Identifier(source),
            sql.Identifier(table.name),
        )
    ).rowcount


def publish_build_area(pg: psycopg.Connection, commit: bool = True) -> dict[str, int]:
    """Make every ``ml.<table>`` equal ``ml__build.<table>`` (delete changed/removed rows, insert
    changed/new ones) in the caller's transaction; a no-op when the build area was never prepared.

    The sync state decides which rows are compared (ADR 0111): none when the build area still equals
    ``ml``, the logged keys after a tracked prepare, every row otherwise."""
    exists = pg.execute("select 1 from pg_namespace where nspname = %s", [BUILD_SCHEMA]).fetchone()
    inserted: dict[str, int] = {}
    if not exists:
        return inserted
    names = sorted(TABLES)
    # Lock published tables in a fixed order: readers keep reading the old rows until commit. Before
    # the state row: a writer to ml holds its table's lock when its trigger updates that row.
    for name in names:
        pg.execute(
            sql.SQL("lock table {}.{} in share row exclusive mode").format(sql.Identifier(SCHEMA), sql.Identifier(name))
        )
    _tracking_on(pg)
    state = _sync_state(pg, for_update=True)
    if state == IDENTICAL:
        fault_point("publish:commit")
        if commit:
            pg.commit()
        return {name: 0 for name in names}
    for name in names:
        inserted[name] = _sync_table(pg, TABLES[name], BUILD_SCHEMA, SCHEMA, changes=state == TRACKED)
        fault_point(f"publish:{name}")
    if state != MISSING:
        _mark_identical(pg)
    fault_point("publish:commit")
    if commit:
        pg.commit()
    return inserted


# -- the sync state of ml__build against ml (docs/decisions/0111) --------------------------------
# identical: every build table equals its published table. tracked: they differ at most in the keys
# logged in ml__build.<table>__changes (a prepare ran since). unknown: anything else (a write to ml or
# ml__build outside the write-back, which a statement trigger on every table records; a missing
# trigger). missing: no state table (a build area made before ADR 0111).
SYNC_STATE = f"{BUILD_SCHEMA}.sync_state"
IDENTICAL, TRACKED, UNKNOWN, MISSING = "identical", "tracked", "unknown", "missing"
TRACKING_SETTING = "gridcredit.ml_sync_tracking"
SYNC_TRIGGER = "gridcredit_ml_sync"
_SYNC_DDL = f"""
do $do$ begin
    -- Created once and only then commented and filled: a later reset may run as a role that does not
    -- own the table (ADR 0080's stage roles), and need not.
    if to_regclass('{SYNC_STATE}') is null then
        create table {SYNC_STATE} (
            singleton boolean primary key default true check (singleton),
            state text not null check (state in ('{IDENTICAL}', '{TRACKED}', '{UNKNOWN}')),
            changed_at timestamptz not null default now()
        );
        comment on table {SYNC_STATE} is
            'Whether ml__build equals ml (identical), differs only in the keys logged in <table>__changes '
            '(tracked) or may differ anywhere (unknown): the write-back compares only what it must (ADR 0111).';
    end if;
    if not exists (select from {SYNC_STATE}) then
        insert into {SYNC_STATE} (state) values ('{UNKNOWN}');
    end if;
end $do$;
do $do$ begin
    if to_regprocedure('{BUILD_SCHEMA}.mark_ml_out_of_sync()') is null then
        -- security definer: any role that may write ml (or ml__build) may mark the state, even one
        -- without rights on the state table.
        create function {BUILD_SCHEMA}.mark_ml_out_of_sync() returns trigger language plpgsql
        security definer set search_path = pg_catalog as $f$
        begin
            -- The write-back sets the setting for its own transaction; any other write makes the
            -- state unknown, so the next reset copies and the next publish compares every row.
            if coalesce(current_setting('{TRACKING_SETTING}', true), '') <> 'on' then
                update {SYNC_STATE} set state = '{UNKNOWN}', changed_at = now() where state <> '{UNKNOWN}';
            end if;
            return null;
        end $f$;
    end if;
end $do$;
"""


def _ensure_sync_tracking(pg: psycopg.Connection) -> bool:
    """Create the state table, its trigger function and a statement trigger on every ``ml`` and
    ``ml__build`` table. True when all of them exist and the state can be trusted; a trigger created
    now means writes before it went unseen (the state becomes unknown). Commits."""
    pg.execute(_SYNC_DDL)
    pg.commit()
    untracked = False
    for table in TABLES.values():
        for schema in (SCHEMA, BUILD_SCHEMA):
            relation = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table.name))
            found = pg.execute(
                "select 1 from pg_trigger where tgrelid = %s::regclass and tgname = %s and tgenabled <> 'D'",
                [f"{schema}.{table.name}", SYNC_TRIGGER],
            ).fetchone()
            if found:
                continue
            pg.execute(f"update {SYNC_STATE} set state = %s, changed_at = now()", [UNKNOWN])
            try:
                with pg.transaction():
                    pg.execute(
                        sql.SQL(
                            "create trigger {} after insert or update or delete or truncate on {}"
                            " for each statement execute function {}.mark_ml_out_of_sync()"
                        ).format(sql.Identifier(SYNC_TRIGGER), relation, sql.Identifier(BUILD_SCHEMA))
                    )
            except psycopg.errors.InsufficientPrivilege:
                untracked = True  # not the table's owner: copy and compare everything, as before ADR 0111
            pg.commit()
    return not untracked


def _tracking_on(pg: psycopg.Connection) -> None:
    """This transaction's writes are the write-back's own: the triggers leave the state alone."""
    pg.execute("select set_config(%s, 'on', true)", [TRACKING_SETTING])


def _sync_state(pg: psycopg.Connection, for_update: bool = False) -> str:
    if not pg.execute("select to_regclass(%s)", [SYNC_STATE]).fetchone()[0]:
        return MISSING
    row = pg.execute(f"select state from {SYNC_STATE}" + (" for update" if for_update else "")).fetchone()
    return row[0] if row else UNKNOWN


def _mark_identical(pg: psycopg.Connection) -> None:
    for table in TABLES.values():
        pg.execute(sql.SQL("truncate {}").format(_build(_changes_table(table).name)))
    pg.execute(f"update {SYNC_STATE} set state = %s, changed_at = now()", [IDENTICAL])


def _changes_table(table: Table) -> Table:
    """``ml__build.<table>__changes``: the keys a prepare changed since the tables were identical."""
    by_name = {c.name: c for c in table.columns}
    columns = tuple(by_name[k] for k in table.primary_key)
    return Table(f"{table.name}__changes", "Keys changed since ml__build equalled ml.", columns, table.primary_key)


def _log_changes(pg: psycopg.Connection, table: Table, keys: sql.Composable, params: list | None = None) -> None:
    pg.execute(
        sql.SQL("insert into {} ({}) {} on conflict do nothing").format(
            _build(_changes_table(table).name), _keys(table), keys
        ),
        params or [],
    )


def _build(name: str) -> sql.Composable:
    return sql.SQL("{}.{}").format(sql.Identifier(BUILD_SCHEMA), sql.Identifier(name))


def _keys(table: Table) -> sql.Composable:
    return sql.SQL(", ").join(sql.Identifier(c) for c in table.primary_key)


def _sync_table(pg: psycopg.Connection, table: Table, source: str, target: str, changes: bool) -> int:
    """Make ``target.<table>`` equal ``source.<table>`` by key and content (only rows that differ are
    deleted and inserted); with ``changes`` only the keys in the change log. Returns rows inserted."""
    name = table.name
    src = sql.SQL("{}.{}").format(sql.Identifier(source), sql.Identifier(name))
    tgt = sql.SQL("{}.{}").format(sql.Identifier(target), sql.Identifier(name))
    log = _build(_changes_table(table).name)
    if changes:
        delete = sql.SQL("delete from {tgt} as t using {log} as c where {ckey} = {tkey} and not exists").format(
            tgt=tgt, log=log, ckey=_qualified(table.primary_key, "c"), tkey=_qualified(table.primary_key, "t")
        )
        candidates = sql.SQL("{log} as c join {src} as s on {skey} = {ckey}").format(
            log=log, src=src, skey=_qualified(table.primary_key, "s"), ckey=_qualified(table.primary_key, "c")
        )
    else:
        delete = sql.SQL("delete from {tgt} as t where not exists").format(tgt=tgt)
        candidates = sql.SQL("{src} as s").format(src=src)
    pg.execute(
        sql.SQL(
            "{delete} (select from {src} as s where {skey} = {tkey} and row{srow} is not distinct from row{trow})"
        ).format(
            delete=delete,
            src=src,
            skey=_qualified(table.primary_key, "s"),
            tkey=_qualified(table.primary_key, "t"),
            srow=_qualified(table.column_names, "s"),
            trow=_qualified(table.column_names, "t"),
        )
    )
    cur = pg.execute(
        sql.SQL(
            "insert into {tgt} ({cols}) select {scols} from {candidates}"
            " where not exists (select from {tgt} as t where {tkey} = {skey}) order by {order}"
        ).format(
            tgt=tgt,
            cols=sql.SQL(", ").join(sql.Identifier(c) for c in table.column_names),
            scols=sql.SQL(", ").join(sql.Identifier("s", c) for c in table.column_names),
            candidates=candidates,
            tkey=_qualified(table.primary_key, "t"),
            skey=_qualified(table.primary_key, "s"),
            order=sql.SQL(", ").join(sql.Identifier("s", c) for c in table.primary_key),
        )
    )
    return cur.rowcount


def _qualified(columns, alias: str) -> sql.Composable:
    return sql.SQL("({})").format(sql.SQL(", ").join(sql.Identifier(alias, c) for c in columns))
