"""Read the feature and label marts: discover feature columns, load frames fast (COPY).

The ML step never hard-codes feature names: every numeric or boolean column of the feature
mart is a feature unless it is a key, a label, or excluded in ``ml/config.yaml``. Label column
names come from ``inputs.labels`` (one place).
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import psycopg
from psycopg import sql

NUMERIC_TYPES = {"smallint", "integer", "bigint", "numeric", "real", "double precision", "decimal"}
BOOLEAN_TYPES = {"boolean"}
DATE_TYPES = {"date", "timestamp without time zone", "timestamp with time zone"}
MONTH_INDEX = "_month_index"


@dataclass(frozen=True)
class ColumnInfo:
    name: str
    data_type: str
    description: str | None


def split_table(name: str) -> tuple[str, str]:
    if name.count(".") != 1:
        raise ValueError(f"table name must be schema.table, got {name!r}")
    schema, table = name.split(".")
    return schema, table


def table_ident(name: str) -> sql.Composed:
    schema, table = split_table(name)
    return sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))


def table_exists(pg: psycopg.Connection, name: str) -> bool:
    schema, table = split_table(name)
    row = pg.execute(
        "select 1 from information_schema.tables where table_schema = %s and table_name = %s",
        [schema, table],
    ).fetchone()
    return row is not None


def table_columns(pg: psycopg.Connection, name: str) -> list[ColumnInfo]:
    """Columns of a table or view in order, with their type and description (dbt persist_docs)."""
    schema, table = split_table(name)
    rows = pg.execute(
        """
        select a.attname, format_type(a.atttypid, a.atttypmod), col_description(c.oid, a.attnum)
        from pg_attribute a
        join pg_class c on c.oid = a.attrelid
        join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = %s and c.relname = %s and a.attnum > 0 and not a.attisdropped
        order by a.attnum
        """,
        [schema, table],
    ).fetchall()
    out = []
    for column, data_type, description in rows:
        base = re.sub(r"\(.*\)", "", data_type).strip()
        out.append(ColumnInfo(column, base, description))
    return out


def _is_label_like(name: str, label_names: set[str]) -> bool:
    return name in label_names or name.startswith("label_") or name.endswith("_label")


def discover_features(columns: list[ColumnInfo], cfg: dict) -> list[str]:
    """Numeric/boolean columns except keys, labels, excluded names and excluded suffixes.

    Parameters
    ----------
    columns : list of ColumnInfo
        Columns of the feature table.
    cfg : dict
        The ML configuration (``inputs`` section used).

    Returns
    -------
    list of str
        Feature names in table order.
    """
    inputs = cfg["inputs"]
    keys = set(inputs["keys"])
    labels = set(inputs["labels"].values())
    excluded = set(inputs.get("exclude_columns") or [])
    suffixes = tuple(inputs.get("exclude_suffixes") or [])
    out = []
    for col in columns:
        if col.name in keys or col.name in excluded or _is_label_like(col.name, labels):
            continue
        if suffixes and col.name.endswith(suffixes):
            continue
        if col.data_type in NUMERIC_TYPES or col.data_type in BOOLEAN_TYPES:
            out.append(col.name)
    return out


def plain_label(column: ColumnInfo | str, overrides: dict | None = None) -> str:
    """Plain-words name of a feature: config override, else first sentence of its description,
    else the column name in words (``days_past_due_max_12m`` -> ``days past due max 12m``)."""
    name = column.name if isinstance(column, ColumnInfo) else column
    if overrides and name in overrides:
        return str(overrides[name])
    description = column.description if isinstance(column, ColumnInfo) else None
    if description:
        # The indicator docs open with their dimension in bold ("**Payment behaviour.** ..."): skip it.
        description = re.sub(r"^\*\*[^*]*\*\*\s*", "", description.strip())
        first = re.split(r"(?<=[.;:])\s|\n", description, maxsplit=1)[0].rstrip(".;:")
        if 0 < len(first) <= 90:
            return first
    words = name.replace("_", " ")
    return words[:1].upper() + words[1:]


COPY_PARSE_ROWS = 200_000  # rows per parsed CSV chunk: bounds the text held at once, not the result


class _CopyStream(io.RawIOBase):
    """A readable binary stream over a COPY's chunks, so pandas parses while the server sends."""

    def __init__(self, copy):
        self._chunks = iter(copy)
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, target) -> int:
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = memoryview(bytes(chunk))
        n = min(len(target), len(self._pending))
        target[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


def _copy_query(pg: psycopg.Connection, query: sql.Composable | str, params=None) -> sql.Composed:
    if isinstance(query, str):
        query = sql.SQL(query)
    if params:
        query = sql.SQL(psycopg.ClientCursor(pg).mogrify(query, params))
    return sql.SQL("copy ({}) to stdout with (format csv, header true)").format(query)


def iter_sql_chunks(
    pg: psycopg.Connection,
    query: sql.Composable | str,
    params=None,
    dtypes: dict[str, str] | None = None,
    rows: int | None = None,
):
    """Yield the rows of ``query`` as frames of at most ``rows`` rows, parsed as :func:`read_sql_frame`
    parses them, while the server sends: a caller that aggregates as it goes never holds them all.
    The connection is busy until the iteration ends. ``rows`` defaults to ``COPY_PARSE_ROWS``."""
    dtypes = dtypes or {}
    read_types = {c: ("float64" if t == "float" else "string") for c, t in dtypes.items() if t != "date"}
    with pg.cursor() as cur, cur.copy(_copy_query(pg, query, params)) as copy:
        stream = io.BufferedReader(_CopyStream(copy), buffer_size=1 << 20)
        with pd.read_csv(
            stream, dtype=read_types, keep_default_na=True, na_values=[""], chunksize=rows or COPY_PARSE_ROWS
        ) as reader:
            for chunk in reader:
                for column, kind in dtypes.items():
                    if kind == "date" and column in chunk:
                        chunk[column] = pd.to_datetime(chunk[column]).astype("datetime64[ns]")
                yield chunk


def read_sql_frame(
    pg: psycopg.Connection, query: sql.Composable | str, params=None, dtypes: dict[str, str] | None = None
) -> pd.DataFrame:
    """Run ``query`` through ``COPY (...) TO STDOUT`` (CSV) and parse it with pandas.

    Far faster than fetching rows through the cursor for millions of rows. The CSV text is parsed
    as it arrives, ``COPY_PARSE_ROWS`` rows at a time (the same parser and options as one whole
    parse, so the same values), never held whole. Columns in ``dtypes`` are parsed as given
    (``"float"``, ``"string"``, ``"date"``).
    """
    copy_sql = _copy_query(pg, query, params)
    dtypes = dtypes or {}
    read_types = {c: ("float64" if t == "float" else "string") for c, t in dtypes.items() if t != "date"}
    # Each parsed chunk is split into its columns at once (so the chunk's 2-D block is freed), and
    # each column's pieces are joined and dropped one column at a time: the peak is about one frame
    # plus one column, not two frames. The frame keeps one block per column, as before (the old
    # float64 cast loop split every feature into its own block too).
    pieces: dict[str, list[pd.Series]] = {}
    with pg.cursor() as cur, cur.copy(copy_sql) as copy:
        stream = io.BufferedReader(_CopyStream(copy), buffer_size=1 << 20)
        with pd.read_csv(
            stream, dtype=read_types, keep_default_na=True, na_values=[""], chunksize=COPY_PARSE_ROWS
        ) as reader:
            for chunk in reader:
                for name in chunk.columns:
                    pieces.setdefault(name, []).append(chunk[name].copy())
                del chunk
    columns = {}
    for name in list(pieces):
        parts = pieces.pop(name)
        columns[name] = parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)
        del parts
    frame = pd.DataFrame(columns, copy=False)
    del columns
    for column, kind in dtypes.items():
        if kind == "date" and column in frame:
            frame[column] = pd.to_datetime(frame[column]).astype("datetime64[ns]")
    return frame


def month_index(values) -> np.ndarray:
    """Months as integers ``year * 12 + month - 1`` (for month arithmetic)."""
    ts = pd.DatetimeIndex(pd.to_datetime(values))
    return (ts.year * 12 + ts.month - 1).to_numpy(dtype=np.int64)


def month_from_index(index: int) -> pd.Timestamp:
    return pd.Timestamp(year=int(index) // 12, month=int(index) % 12 + 1, day=1)


@dataclass
class Dataset:
    """Features, labels and attributes of the customer-months read for one scoring run.

    Two kinds (ADR 0097): a whole dataset (``source`` None: ``frame`` holds every month, as
    :func:`load_dataset` reads it) and an on-demand one (:func:`open_dataset`): ``frame`` holds only
    the months of a :meth:`window` (none at first), and ``months``, row counts, labelled months and
    month dates come from one SQL aggregate over the whole mart, so the score stage never holds
    the whole history.
    """

    frame: pd.DataFrame  # keys + features + labels + segments (+ month index)
    features: list[str]
    labels: dict[str, str]  # role -> column present in the frame
    segments: dict[str, str]  # segment type -> column present in the frame
    feature_info: dict[str, ColumnInfo] = field(default_factory=dict)
    consumption_column: str | None = None
    in_arrears_column: str | None = None
    customer_col: str = "customer_id"
    month_col: str = "as_of_month"
    source: MartSource | None = None  # reads months on demand; None: ``frame`` holds every month

    @property
    def on_demand(self) -> bool:
        return self.source is not None

    @property
    def months(self) -> list[int]:
        if self.source is not None:
            return sorted(self.source.month_rows)
        return sorted(int(m) for m in self.frame[MONTH_INDEX].unique())

    @property
    def latest_month(self) -> int:
        if self.source is not None:
            return max(self.source.month_rows)
        return int(self.frame[MONTH_INDEX].max())

    @property
    def n_rows(self) -> int:
        if self.source is not None:
            return sum(self.source.month_rows.values())
        return len(self.frame)

    def month_row_counts(self) -> dict[int, int]:
        """Rows per as-of month (month index -> rows) over the whole history."""
        if self.source is not None:
            return dict(self.source.month_rows)
        return {int(m): int(n) for m, n in self.frame[MONTH_INDEX].value_counts().items()}

    def label_counts(self, column: str) -> dict[int, int]:
        """Rows with a known (not null) ``column`` per as-of month over the whole history."""
        if self.source is not None:
            return dict(self.source.label_rows.get(column, {}))
        known = self.frame.loc[self.frame[column].notna(), MONTH_INDEX].value_counts()
        return {int(m): int(n) for m, n in known.items()}

    def labelled_months(self, role: str, horizon: int) -> list[int]:
        """As-of months whose label ``role`` is known: not null and old enough."""
        column = self.labels.get(role)
        if column is None:
            return []
        latest = self.latest_month
        known = [m for m, n in self.label_counts(column).items() if n > 0]
        return sorted(int(m) for m in known if m <= latest - horizon)

    def month_dates(self, months) -> list:
        """The as-of month values (dates) of ``months``, sorted."""
        wanted = {int(m) for m in months}
        if self.source is not None:
            return sorted(d for m, dates in self.source.month_dates.items() if m in wanted for d in dates)
        part = self.frame.loc[self.frame[MONTH_INDEX].isin(wanted), self.month_col]
        return sorted(part.dt.date.unique())

    def window(self, months, columns: list[str] | None = None) -> Dataset:
        """This dataset with ``frame`` holding only ``months`` (and, if given, only ``columns`` beside
        the keys and month index): exactly the rows, order, columns and dtypes the whole frame has
        for those months. A whole dataset returns itself (its frame already holds every month)."""
        if self.source is None:
            return self
        return replace(self, frame=self.source.read(months, columns))


class MartSource:
    """Reads as-of months of the feature mart (with labels and segments) on demand.

    ``month_rows``, ``label_rows`` and ``month_dates`` are read once by one SQL aggregate (no
    frame); :meth:`read` returns the rows of some months exactly as :func:`load_dataset` would.
    """

    def __init__(self, pg: psycopg.Connection, spec: _MartSpec):
        self.pg, self.spec = pg, spec
        self._segment_frame: pd.DataFrame | None = None
        self.month_rows, self.label_rows, self.month_dates = _month_summary(pg, spec)

    def segment_frame(self) -> pd.DataFrame | None:
        """Current segments per customer from the segment table (read once: one row a customer)."""
        if self._segment_frame is None and self.spec.segment_take:
            self._segment_frame = _read_segments(self.pg, self.spec)
        return self._segment_frame

    def read(self, months, columns: list[str] | None = None) -> pd.DataFrame:
        dates = sorted(d for m in {int(x) for x in months} for d in self.month_dates.get(m, []))
        spec = self.spec
        where = sql.SQL(" where {} = any({}::date[])").format(
            sql.Identifier(spec.month_col), sql.Literal([str(d) for d in dates])
        )
        return _read_frame(self.pg, spec, where, columns, segments=self.segment_frame())


@dataclass
class _MartSpec:
    """What :func:`load_dataset` reads: the columns of each table and the roles they play."""

    fcols: list[ColumnInfo]
    features_table: str
    customer_col: str
    month_col: str
    wanted: list[str]  # feature-mart columns in frame order
    features: list[str]
    labels_in_features: dict[str, str]
    label_take: dict[str, str]  # role -> column read from the labels table
    labels_table: str
    lcols: list[ColumnInfo]
    segments_in_features: dict[str, str]
    segment_take: dict[str, str]  # segment type -> column read from the segment table
    segment_table: str | None
    scols: list[ColumnInfo]
    consumption: str | None
    in_arrears: str | None

    @property
    def labels(self) -> dict[str, str]:
        return {**self.labels_in_features, **self.label_take}

    @property
    def segments(self) -> dict[str, str]:
        return {**self.segments_in_features, **self.segment_take}


def _select_list(columns: list[ColumnInfo], wanted: list[str]) -> tuple[sql.Composed, dict[str, str]]:
    """Select expressions with casts that CSV round-trips exactly, and the parse types."""
    by_name = {c.name: c for c in columns}
    parts, dtypes = [], {}
    for name in wanted:
        col = by_name[name]
        ident = sql.Identifier(name)
        if col.data_type in BOOLEAN_TYPES:
            parts.append(sql.SQL("{}::int as {}").format(ident, ident))
            dtypes[name] = "float"
        elif col.data_type in NUMERIC_TYPES:
            parts.append(sql.SQL("{}::float8 as {}").format(ident, ident))
            dtypes[name] = "float"
        elif col.data_type in DATE_TYPES:
            parts.append(sql.SQL("{}::date as {}").format(ident, ident))
            dtypes[name] = "date"
        else:
            parts.append(sql.SQL("{}::text as {}").format(ident, ident))
            dtypes[name] = "string"
    return sql.SQL(", ").join(parts), dtypes


def _mart_spec(pg: psycopg.Connection, cfg: dict) -> _MartSpec:
    inputs = cfg["inputs"]
    customer_col, month_col = inputs["keys"]
    features_table = inputs["features_table"]
    if not table_exists(pg, features_table):
        raise LookupError(f"{features_table} does not exist: build the marts first (`gridcredit dbt build`)")
    fcols = table_columns(pg, features_table)
    names = [c.name for c in fcols]
    for key in (customer_col, month_col):
        if key not in names:
            raise LookupError(f"{features_table} has no key column {key!r}")
    features = discover_features(fcols, cfg)
    label_roles = {role: col for role, col in inputs["labels"].items()}
    segments_in_features = {seg: col for seg, col in (inputs.get("segments") or {}).items() if col in names}
    consumption = next((c for c in inputs.get("consumption_columns", []) if c in names), None)
    in_arrears = next((c for c in inputs.get("in_arrears_columns", []) if c in names), None)

    wanted = [customer_col, month_col, *features, *segments_in_features.values()]
    labels_in_features = {r: c for r, c in label_roles.items() if c in names}
    wanted += [c for c in labels_in_features.values() if c not in wanted]
    for extra in (consumption, in_arrears):
        if extra and extra not in wanted:
            wanted.append(extra)

    labels_table = inputs["labels_table"]
    label_take, lcols = {}, []
    missing_roles = {r: c for r, c in label_roles.items() if r not in labels_in_features}
    if missing_roles and table_exists(pg, labels_table):
        lcols = table_columns(pg, labels_table)
        present = {c.name for c in lcols}
        label_take = {r: c for r, c in missing_roles.items() if c in present}

    seg_table = inputs.get("segment_table")
    segment_take, scols = {}, []
    missing_segments = {s: c for s, c in (inputs.get("segments") or {}).items() if s not in segments_in_features}
    if missing_segments and seg_table and table_exists(pg, seg_table):
        scols = table_columns(pg, seg_table)
        present = {c.name for c in scols}
        take = {s: c for s, c in missing_segments.items() if c in present}
        if take and customer_col in present:
            segment_take = take
    return _MartSpec(
        fcols=fcols,
        features_table=features_table,
        customer_col=customer_col,
        month_col=month_col,
        wanted=wanted,
        features=features,
        labels_in_features=labels_in_features,
        label_take=label_take,
        labels_table=labels_table,
        lcols=lcols,
        segments_in_features=segments_in_features,
        segment_take=segment_take,
        segment_table=seg_table,
        scols=scols,
        consumption=consumption,
        in_arrears=in_arrears,
    )


def _read_segments(pg: psycopg.Connection, spec: _MartSpec) -> pd.DataFrame:
    select, stypes = _select_list(spec.scols, [spec.customer_col, *spec.segment_take.values()])
    sframe = read_sql_frame(
        pg,
        sql.SQL("select distinct on ({}) {} from {} order by {}").format(
            sql.Identifier(spec.customer_col),
            select,
            table_ident(spec.segment_table),
            sql.Identifier(spec.customer_col),
        ),
        dtypes=stypes,
    )
    sframe[spec.customer_col] = sframe[spec.customer_col].astype(str)
    return sframe


def _read_frame(
    pg: psycopg.Connection,
    spec: _MartSpec,
    where: sql.Composable,
    columns: list[str] | None = None,
    segments: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The frame of the feature-mart rows matching ``where``, with labels and segments joined.

    ``columns``: only these (beside the keys and the month index), in frame order.
    """
    customer_col, month_col = spec.customer_col, spec.month_col
    keep = None if columns is None else {customer_col, month_col, *columns}
    wanted = [c for c in spec.wanted if keep is None or c in keep]
    select, dtypes = _select_list(spec.fcols, wanted)
    # Rows arrive in the frame's final order (month, then customer id by code point: collation "C"
    # orders UTF-8 bytes, which is code-point order, as Python compares str), so no sorted copy of the
    # whole frame is needed below; the order is checked, and sorted only if the check fails.
    query = sql.SQL('select {} from {}{} order by {}, {}::text collate "C"').format(
        select, table_ident(spec.features_table), where, sql.Identifier(month_col), sql.Identifier(customer_col)
    )
    frame = read_sql_frame(pg, query, dtypes=dtypes)
    frame[customer_col] = frame[customer_col].astype(str)

    take = {r: c for r, c in spec.label_take.items() if keep is None or c in keep}
    if take:
        select, ltypes = _select_list(spec.lcols, [customer_col, month_col, *take.values()])
        lframe = read_sql_frame(
            pg, sql.SQL("select {} from {}{}").format(select, table_ident(spec.labels_table), where), dtypes=ltypes
        )
        lframe[customer_col] = lframe[customer_col].astype(str)
        # A left join by key, one column at a time (a merge would copy the whole frame).
        keys = pd.MultiIndex.from_arrays([frame[customer_col], frame[month_col]])
        at = pd.MultiIndex.from_arrays([lframe[customer_col], lframe[month_col]]).get_indexer(keys)
        for column in take.values():
            frame[column] = _take_or_missing(lframe[column], at)
        del lframe

    take = {s: c for s, c in spec.segment_take.items() if keep is None or c in keep}
    if take:
        sframe = segments if segments is not None else _read_segments(pg, spec)
        at = pd.Index(sframe[customer_col]).get_indexer(frame[customer_col])
        for column in take.values():
            frame[column] = _take_or_missing(sframe[column], at)
    for col in spec.segments.values():
        if col in frame:
            frame[col] = frame[col].astype("string").fillna("unknown")

    frame[MONTH_INDEX] = month_index(frame[month_col])
    if not _sorted_by_month_and_customer(frame[MONTH_INDEX].to_numpy(), frame[customer_col].to_numpy()):
        frame = frame.sort_values([MONTH_INDEX, customer_col], kind="stable", ignore_index=True)
    for col in spec.features:
        if col in frame and frame[col].dtype != np.float64:  # parsed as float64 already: no copy
            frame[col] = frame[col].astype("float64")
    return frame


def _month_summary(
    pg: psycopg.Connection, spec: _MartSpec
) -> tuple[dict[int, int], dict[str, dict[int, int]], dict[int, list]]:
    """Rows and known labels per as-of month and the month dates: one aggregate, no rows fetched."""
    customer_col, month_col = spec.customer_col, spec.month_col
    label_exprs = [sql.SQL("count(f.{})").format(sql.Identifier(c)) for c in spec.labels_in_features.values()]
    join = sql.SQL("")
    if spec.label_take:
        label_exprs += [sql.SQL("count(l.{})").format(sql.Identifier(c)) for c in spec.label_take.values()]
        join = sql.SQL(" left join {} as l on l.{c} = f.{c} and l.{m} = f.{m}").format(
            table_ident(spec.labels_table), c=sql.Identifier(customer_col), m=sql.Identifier(month_col)
        )
    query = sql.SQL("select f.{m}::date, count(*){extra} from {t} as f{join} group by 1 order by 1").format(
        m=sql.Identifier(month_col),
        extra=sql.SQL("").join(sql.SQL(", ") + e for e in label_exprs),
        t=table_ident(spec.features_table),
        join=join,
    )
    rows = pg.execute(query).fetchall()
    label_columns = [*spec.labels_in_features.values(), *spec.label_take.values()]
    month_rows: dict[int, int] = {}
    label_rows: dict[str, dict[int, int]] = {c: {} for c in label_columns}
    month_dates: dict[int, list] = {}
    for row in rows:
        m = int(month_index([row[0]])[0])
        month_rows[m] = month_rows.get(m, 0) + int(row[1])
        month_dates.setdefault(m, []).append(row[0])
        for column, n in zip(label_columns, row[2:], strict=True):
            if n:
                label_rows[column][m] = label_rows[column].get(m, 0) + int(n)
    return month_rows, label_rows, month_dates


def _dataset(spec: _MartSpec, frame: pd.DataFrame, source: MartSource | None) -> Dataset:
    return Dataset(
        frame=frame,
        features=spec.features,
        labels=spec.labels,
        segments=spec.segments,
        feature_info={c.name: c for c in spec.fcols},
        consumption_column=spec.consumption,
        in_arrears_column=spec.in_arrears,
        customer_col=spec.customer_col,
        month_col=spec.month_col,
        source=source,
    )


def load_dataset(pg: psycopg.Connection, cfg: dict, first_month: int | None = None) -> Dataset:
    """Read the feature mart (and labels, segments, consumption) into one frame.

    Parameters
    ----------
    pg : psycopg.Connection
        Open connection to the warehouse.
    cfg : dict
        The ML configuration.
    first_month : int, optional
        Only as-of months from this month index on.

    Raises
    ------
    LookupError
        The feature table does not exist (the dbt marts have not been built).
    """
    spec = _mart_spec(pg, cfg)
    where = sql.SQL("")
    if first_month is not None:
        where = sql.SQL(" where {} >= {}").format(
            sql.Identifier(spec.month_col), sql.Literal(month_from_index(first_month).date())
        )
    return _dataset(spec, _read_frame(pg, spec, where), None)


def open_dataset(pg: psycopg.Connection, cfg: dict) -> Dataset:
    """The feature mart as an on-demand :class:`Dataset`: months are read when a step asks for them
    (:meth:`Dataset.window`); only the rows per month, known labels per month and month dates are
    read now (one aggregate). ``frame`` starts empty, with the whole frame's columns and dtypes.

    Raises
    ------
    LookupError
        The feature table does not exist (the dbt marts have not been built).
    """
    spec = _mart_spec(pg, cfg)
    source = MartSource(pg, spec)
    return _dataset(spec, _read_frame(pg, spec, sql.SQL(" where false"), segments=source.segment_frame()), source)


def _take_or_missing(values: pd.Series, at: np.ndarray) -> pd.Series:
    """``values`` at positions ``at`` (-1: missing), as a left merge fills them (same dtype)."""
    return values.reset_index(drop=True).reindex(at).reset_index(drop=True)


def _sorted_by_month_and_customer(month: np.ndarray, customer: np.ndarray) -> bool:
    """True when rows are in (month, customer) order, as the stable sort would leave them."""
    if len(month) < 2:
        return True
    later = month[1:] > month[:-1]
    same = month[1:] == month[:-1]
    return bool(np.all(later | (same & (customer[1:] > customer[:-1]))))


def fingerprint_frame(frame: pd.DataFrame) -> str:
    """sha256 of a frame's content (column names, dtypes and values, in row order)."""
    import hashlib

    digest = hashlib.sha256()
    digest.update("|".join(f"{c}:{frame[c].dtype}" for c in frame.columns).encode())
    if len(frame):
        digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def fingerprint_rows(frame: pd.DataFrame, rows: np.ndarray, columns: list[str]) -> str:
    """``fingerprint_frame(frame.iloc[rows][columns])`` without building that copy: one column at a time.

    pandas hashes a frame column by column and combines the hashes (``combine_hash_arrays``), so
    combining each column's hash here gives the same digest (tests/test_ml_units.py checks it).
    """
    import hashlib

    from pandas.core.util.hashing import combine_hash_arrays

    digest = hashlib.sha256()
    digest.update("|".join(f"{c}:{frame[c].dtype}" for c in columns).encode())
    if len(rows):
        hashes = (pd.util.hash_pandas_object(frame[c].iloc[rows], index=False).to_numpy() for c in columns)
        digest.update(combine_hash_arrays(hashes, len(columns), len(rows)).tobytes())
    return digest.hexdigest()
