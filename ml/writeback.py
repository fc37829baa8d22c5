"""Write-back: COPY into the build area ``ml__build``, then one atomic switch into ``ml``.

Staging (slow, may crash) and publishing (fast, one transaction) are separate:

1. ``BuildArea.reset()`` drops what a crashed run left in ``ml__build`` and recreates it;
2. ``BuildArea.stage(table, frame, scope)`` COPYs a frame into ``ml__build.<table>`` (unlogged,
   same columns and primary key as the published table, so duplicates fail here, not later);
3. ``BuildArea.publish()`` opens ONE transaction that, for every staged table, deletes the
   published rows the run replaces (its scope: the months it scored, its run ids, ...) and inserts
   the staged rows, then drops the build area and commits.

A crash (even SIGKILL) before the commit leaves ``ml`` exactly as it was: PostgreSQL rolls the
open transaction back. Published tables are never dropped or renamed, so dbt staging views,
grants and dashboards that depend on them keep pointing at the same relations (a schema or table
rename would leave views bound to the old relation; see docs/decisions/0031-ml-write-back.md).

Fault injection for tests: ``GRIDCREDIT_KILL_AT=ml:<point>`` kills the process with SIGKILL at a
named point (``stage:<table>`` after a table is staged, ``publish:<table>`` inside the switch
after that table was replaced, ``publish:commit`` just before the commit).
"""

from __future__ import annotations

import io
import json
import os
import signal
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
from psycopg import sql

from gridcredit.ml.schema import BUILD_SCHEMA, SCHEMA, TABLES, Table, create_table_sql

COPY_CHUNK_ROWS = 200_000


def fault_point(name: str) -> None:
    """SIGKILL this process when ``GRIDCREDIT_KILL_AT`` names this point (tests only)."""
    if os.environ.get("GRIDCREDIT_KILL_AT") == f"ml:{name}":
        os.kill(os.getpid(), signal.SIGKILL)


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
    """The ``ml__build`` schema of one scoring run."""

    def __init__(self, pg: psycopg.Connection):
        self.pg = pg
        self.staged: list[tuple[Table, Scope]] = []
        self.statements: list[tuple[sql.Composable, list]] = []

    def reset(self) -> None:
        """Drop anything a crashed run left behind and start an empty build area."""
        self.pg.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(BUILD_SCHEMA)))
        self.pg.execute(sql.SQL("create schema {}").format(sql.Identifier(BUILD_SCHEMA)))
        self.pg.commit()
        self.staged, self.statements = [], []

    def stage(self, name: str, frame: pd.DataFrame, scope: Scope) -> int:
        """COPY ``frame`` into ``ml__build.<name>``; it will replace ``scope`` of ``ml.<name>``.

        Staging the same table twice appends to it (one scope per call, all applied).
        """
        table = TABLES[name]
        conformed = conform(frame, table)
        if not any(t.name == name for t, _ in self.staged):
            self.pg.execute(create_table_sql(table, BUILD_SCHEMA, unlogged=True, with_comments=False))
        n = copy_frame(self.pg, BUILD_SCHEMA, table, conformed)
        self.pg.commit()
        self.staged.append((table, scope))
        fault_point(f"stage:{name}")
        return n

    def add_statement(self, statement: sql.Composable, params: list | None = None) -> None:
        """A statement to run inside the switch (before the replacements), e.g. flag updates."""
        self.statements.append((statement, params or []))

    def publish(self, commit: bool = True) -> dict[str, int]:
        """The atomic switch: replace every staged scope in one transaction; drop the build area.

        With ``commit=False`` the caller commits (e.g. to switch dbt marts in the same transaction).
        Returns rows inserted per table.
        """
        pg = self.pg
        inserted: dict[str, int] = {}
        names = sorted({t.name for t, _ in self.staged})
        # Lock published tables in a fixed order: readers keep reading the old rows until commit.
        for name in names:
            pg.execute(
                sql.SQL("lock table {}.{} in share row exclusive mode").format(
                    sql.Identifier(SCHEMA), sql.Identifier(name)
                )
            )
        for statement, params in self.statements:
            pg.execute(statement, params)
        for table, scope in self.staged:
            target = sql.SQL("{}.{}").format(sql.Identifier(SCHEMA), sql.Identifier(table.name))
            pg.execute(sql.SQL("delete from {} where {}").format(target, scope.where), scope.params)
        for name in names:
            table = TABLES[name]
            columns = sql.SQL(", ").join(sql.Identifier(c) for c in table.column_names)
            target = sql.SQL("{}.{}").format(sql.Identifier(SCHEMA), sql.Identifier(name))
            cur = pg.execute(
                sql.SQL("insert into {} ({}) select {} from {}.{} order by {}").format(
                    target,
                    columns,
                    columns,
                    sql.Identifier(BUILD_SCHEMA),
                    sql.Identifier(name),
                    sql.SQL(", ").join(sql.Identifier(c) for c in table.primary_key),
                )
            )
            inserted[name] = cur.rowcount
            fault_point(f"publish:{name}")
        pg.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(BUILD_SCHEMA)))
        fault_point("publish:commit")
        if commit:
            pg.commit()
        self.staged, self.statements = [], []
        return inserted
