"""Write-back: COPY into the build area ``ml__build``, then one atomic switch into ``ml``.

Staging (slow, may crash), preparing and publishing (fast, one transaction each) are separate:

1. ``BuildArea.reset()`` drops what a crashed run staged and makes every ``ml__build.<table>`` a
   copy of ``ml.<table>`` (the build tables persist: `gridcredit run`'s dbt staging views read them);
2. ``BuildArea.stage(table, frame, scope)`` COPYs a frame into ``ml__build.<table>__staged``
   (unlogged, same columns and primary key, so duplicates fail here, not later);
3. ``BuildArea.prepare()`` applies, in one transaction, the flag updates and every staged scope
   (delete the rows the run replaces, insert the staged rows) to the build tables: ``ml__build``
   now holds the next state of ``ml``, which dbt (the marts that use scores) and their tests read;
4. ``publish_build_area()`` makes every ``ml`` table equal its build table (rows compared by key and
   content) in the caller's transaction: `gridcredit score` commits it alone, `gridcredit run`
   together with the dbt marts' schema switch (docs/decisions/0090-write-audit-publish.md).

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
        self.statements: list[tuple[sql.Composable, list]] = []

    def reset(self) -> None:
        """Drop what a crashed run staged; make every build table a copy of the published one."""
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
            pg.execute(sql.SQL("truncate {}.{}").format(sql.Identifier(BUILD_SCHEMA), sql.Identifier(table.name)))
            _copy_rows(pg, table, SCHEMA, BUILD_SCHEMA)
        pg.commit()
        self.staged, self.statements = [], []

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

    def add_statement(self, statement: sql.Composable, params: list | None = None) -> None:
        """A statement to run on the build tables before the staged rows replace their scopes.

        Write it against schema ``ml``: it runs with ``search_path`` on ``ml__build``, so name the
        tables without a schema (e.g. ``update model_runs set ...``).
        """
        self.statements.append((statement, params or []))

    def prepare(self) -> dict[str, int]:
        """Apply the staged rows to the build tables (one transaction): ``ml__build`` = next state.

        Returns rows inserted per table.
        """
        pg = self.pg
        inserted: dict[str, int] = {}
        names = sorted({t.name for t, _ in self.staged})
        pg.execute(sql.SQL("set local search_path = {}").format(sql.Identifier(BUILD_SCHEMA)))
        for statement, params in self.statements:
            pg.execute(statement, params)
        for table, scope in self.staged:
            target = sql.SQL("{}.{}").format(sql.Identifier(BUILD_SCHEMA), sql.Identifier(table.name))
            pg.execute(sql.SQL("delete from {} where {}").format(target, scope.where), scope.params)
        for name in names:
            table = TABLES[name]
            columns = sql.SQL(", ").join(sql.Identifier(c) for c in table.column_names)
            cur = pg.execute(
                sql.SQL("insert into {}.{} ({}) select {} from {}.{} order by {}").format(
                    sql.Identifier(BUILD_SCHEMA),
                    sql.Identifier(name),
                    columns,
                    columns,
                    sql.Identifier(BUILD_SCHEMA),
                    sql.Identifier(f"{name}__staged"),
                    sql.SQL(", ").join(sql.Identifier(c) for c in table.primary_key),
                )
            )
            inserted[name] = cur.rowcount
            pg.execute(
                sql.SQL("drop table {}.{}").format(sql.Identifier(BUILD_SCHEMA), sql.Identifier(f"{name}__staged"))
            )
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
    changed/new ones) in the caller's transaction; a no-op when the build area was never prepared."""
    exists = pg.execute("select 1 from pg_namespace where nspname = %s", [BUILD_SCHEMA]).fetchone()
    inserted: dict[str, int] = {}
    if not exists:
        return inserted
    names = sorted(TABLES)
    # Lock published tables in a fixed order: readers keep reading the old rows until commit.
    for name in names:
        pg.execute(
            sql.SQL("lock table {}.{} in share row exclusive mode").format(sql.Identifier(SCHEMA), sql.Identifier(name))
        )
    for name in names:
        table = TABLES[name]
        published = sql.SQL("{}.{}").format(sql.Identifier(SCHEMA), sql.Identifier(name))
        build = sql.SQL("{}.{}").format(sql.Identifier(BUILD_SCHEMA), sql.Identifier(name))
        row = sql.SQL("({})").format(sql.SQL(", ").join(sql.Identifier(c) for c in table.column_names))
        pg.execute(
            sql.SQL(
                "delete from {published} as p where not exists (select from {build} as b"
                " where {bkey} = {pkey} and row{brow} is not distinct from row{prow})"
            ).format(
                published=published,
                build=build,
                bkey=_qualified(table.primary_key, "b"),
                pkey=_qualified(table.primary_key, "p"),
                brow=_qualified(table.column_names, "b"),
                prow=_qualified(table.column_names, "p"),
            )
        )
        cur = pg.execute(
            sql.SQL(
                "insert into {published} {row} select {cols} from {build} as b"
                " where not exists (select from {published} as p where {pkey} = {bkey}) order by {order}"
            ).format(
                published=published,
                row=row,
                cols=sql.SQL(", ").join(sql.Identifier("b", c) for c in table.column_names),
                build=build,
                pkey=_qualified(table.primary_key, "p"),
                bkey=_qualified(table.primary_key, "b"),
                order=sql.SQL(", ").join(sql.Identifier("b", c) for c in table.primary_key),
            )
        )
        inserted[name] = cur.rowcount
        fault_point(f"publish:{name}")
    fault_point("publish:commit")
    if commit:
        pg.commit()
    return inserted


def _qualified(columns, alias: str) -> sql.Composable:
    return sql.SQL("({})").format(sql.SQL(", ").join(sql.Identifier(alias, c) for c in columns))
