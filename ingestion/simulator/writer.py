"""Fast, deterministic CSV writing for the simulator.

Columns are handed over as typed values (:class:`Centi`, :class:`Days`, ...) and formatted here
with pyarrow compute kernels, so number and date formatting never goes through Python floats
or locale-dependent code. Each :class:`TableWriter` streams its file, hashes the bytes as they
are written and sums the ``totals`` columns exactly (integer hundredths).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ..contract import TableSpec

_FRAC2 = pa.array([f"{i:02d}" for i in range(100)])
_WRITE_OPTIONS = pacsv.WriteOptions(include_header=False, quoting_style="none")


@dataclass(frozen=True)
class Centi:
    """Integer hundredths written with exactly two decimals (money, kWh)."""

    values: np.ndarray


@dataclass(frozen=True)
class Fixed4:
    """Integer ten-thousandths written with four decimals (voting stakes, prices)."""

    values: np.ndarray


@dataclass(frozen=True)
class Int:
    """Integers; negative values mean null when ``null_negative`` is set."""

    values: np.ndarray
    null_negative: bool = False


NULL_DAY = -(1 << 31)


@dataclass(frozen=True)
class Days:
    """Days since 1970-01-01 (negative before 1970) written as ``YYYY-MM-DD``.

    ``NULL_DAY`` means null; ``null_negative=True`` also treats every negative value as null
    (for "not yet" dates that can only lie after 1970, e.g. close dates).
    """

    values: np.ndarray
    null_negative: bool = False


@dataclass(frozen=True)
class Secs:
    """Seconds since 1970-01-01 00:00:00 (local time) written as ``YYYY-MM-DD HH:MM:SS``."""

    values: np.ndarray


@dataclass(frozen=True)
class Month:
    """Months since year 0 (``year * 12 + month - 1``) written as ``YYYY-MM``; negative = null."""

    values: np.ndarray


@dataclass(frozen=True)
class Id:
    """``prefix`` followed by the number zero-padded to ``width`` digits; negative -> null."""

    prefix: str
    width: int
    values: np.ndarray


@dataclass(frozen=True)
class Cat:
    """Codes into a list (or arrow array) of labels; negative codes mean null.

    Also the fast path for repeated values: format the distinct values once (e.g. meter ids,
    dates) and pass row codes.
    """

    labels: Sequence[str] | pa.Array
    codes: np.ndarray


@dataclass(frozen=True)
class Const:
    """The same text on every row."""

    value: str


class Text:
    """Free text (names, addresses): quoted when it holds a comma or a double quote."""

    __slots__ = ("values",)

    def __init__(self, values: Sequence[str | None] | np.ndarray | pa.Array):
        self.values = values


Column = Centi | Fixed4 | Int | Days | Secs | Month | Id | Cat | Const | Text


def _take(col: Column, idx: np.ndarray | None) -> Column:
    if idx is None:
        return col
    if isinstance(col, Const):
        return col
    if isinstance(col, Text):
        v = col.values
        if isinstance(v, pa.Array):
            return Text(v.take(pa.array(idx)))
        if isinstance(v, np.ndarray):
            return Text(v[idx])
        return Text([v[i] for i in idx])
    if isinstance(col, Cat):
        return Cat(col.labels, np.asarray(col.codes)[idx])
    if isinstance(col, Id):
        return Id(col.prefix, col.width, np.asarray(col.values)[idx])
    if isinstance(col, Int):
        return Int(np.asarray(col.values)[idx], col.null_negative)
    if isinstance(col, Days):
        return Days(np.asarray(col.values)[idx], col.null_negative)
    return type(col)(np.asarray(col.values)[idx])


def _int_str(v: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(v, dtype=np.int64)).cast(pa.string())


def _null_where(arr: pa.Array, mask: np.ndarray) -> pa.Array:
    if mask.any():
        return pc.if_else(pa.array(mask), pa.scalar(None, pa.string()), arr)
    return arr


def _scaled_decimal_str(v: np.ndarray, scale: int) -> pa.Array:
    """Integers ``v`` shown with ``scale`` decimals (``v / 10**scale``), exactly.

    Builds an arrow decimal128 array over the integers as unscaled values (little-endian
    128-bit two's complement) and lets arrow's decimal-to-string cast format it.
    """
    v = np.ascontiguousarray(v, dtype=np.int64)
    if len(v) == 0:
        return pa.array([], pa.string())
    buf = np.empty((len(v), 2), dtype=np.int64)
    buf[:, 0] = v
    buf[:, 1] = v >> 63
    dec = pa.Array.from_buffers(pa.decimal128(38, scale), len(v), [None, pa.py_buffer(buf)])
    return dec.cast(pa.string())


def fmt_centi(v: np.ndarray) -> pa.Array:
    """Format integer hundredths as decimal strings with two decimals (``-12.05``)."""
    return _scaled_decimal_str(v, 2)


def fmt_fixed4(v: np.ndarray) -> pa.Array:
    """Format integer ten-thousandths with four decimals (``0.6000``)."""
    return _scaled_decimal_str(v, 4)


def format_column(col: Column, n: int) -> pa.Array:
    """Render one column as an arrow string array of length ``n`` (nulls allowed)."""
    if isinstance(col, Const):
        return pa.array([col.value] * n, type=pa.string()) if n else pa.array([], pa.string())
    if isinstance(col, Text):
        v = col.values
        arr = v if isinstance(v, pa.Array) else pa.array(list(v), type=pa.string())
        if n and pc.any(pc.match_substring_regex(arr, "[\r\n]")).as_py():
            raise ValueError("line breaks are not allowed inside fields")
        if n and pc.any(pc.match_substring_regex(arr, '[,"]')).as_py():
            need = pc.match_substring_regex(arr, '[,"]')
            quoted = pc.binary_join_element_wise(
                '"', pc.replace_substring(arr, '"', '""'), '"', ""
            )
            arr = pc.if_else(need, quoted, arr)
        return arr
    if isinstance(col, Centi):
        return fmt_centi(col.values)
    if isinstance(col, Fixed4):
        return fmt_fixed4(col.values)
    if isinstance(col, Int):
        v = np.asarray(col.values, dtype=np.int64)
        s = _int_str(v)
        return _null_where(s, v < 0) if col.null_negative else s
    if isinstance(col, Days):
        v = np.asarray(col.values, dtype=np.int64)
        null = (v < 0) if col.null_negative else (v == NULL_DAY)
        s = pa.array(np.where(null, 0, v).astype(np.int32)).cast(pa.date32()).cast(pa.string())
        return _null_where(s, null)
    if isinstance(col, Secs):
        v = np.asarray(col.values, dtype=np.int64)
        return pa.array(v).cast(pa.timestamp("s")).cast(pa.string())
    if isinstance(col, Month):
        v = np.asarray(col.values, dtype=np.int64)
        y = np.maximum(v, 0) // 12
        m = np.maximum(v, 0) % 12 + 1
        s = pc.binary_join_element_wise(pc.utf8_lpad(_int_str(y), width=4, padding="0"),
                                        _FRAC2.take(pa.array(m)), "-")
        return _null_where(s, v < 0)
    if isinstance(col, Id):
        v = np.asarray(col.values, dtype=np.int64)
        s = pc.utf8_lpad(_int_str(np.maximum(v, 0)), width=col.width, padding="0")
        s = pc.binary_join_element_wise(col.prefix, s, "")
        return _null_where(s, v < 0)
    if isinstance(col, Cat):
        codes = np.asarray(col.codes, dtype=np.int64)
        labels = col.labels if isinstance(col.labels, pa.Array) else pa.array(
            list(col.labels), type=pa.string())
        s = labels.take(pa.array(np.maximum(codes, 0)))
        return _null_where(s, codes < 0)
    raise TypeError(f"unsupported column type {type(col).__name__}")


def _col_len(col: Column) -> int | None:
    if isinstance(col, Const):
        return None
    if isinstance(col, Text):
        return len(col.values)
    if isinstance(col, Cat):
        return len(col.codes)
    return len(col.values)


def _lines_bytes(arrays: list[pa.Array], names: Sequence[str]) -> bytes:
    """CSV lines (``\n`` ends, null as empty) of already formatted and quoted columns."""
    try:
        # fast path: arrow's writer with quoting off writes values verbatim and refuses
        # values holding a comma or quote (then some Text column was quoted: join by hand)
        sink = pa.BufferOutputStream()
        pacsv.write_csv(pa.table(arrays, names=list(names)), sink, _WRITE_OPTIONS)
        return sink.getvalue().to_pybytes()
    except pa.ArrowInvalid:
        pass
    filled = [a.fill_null("") if a.null_count else a for a in arrays]
    line = pc.binary_join_element_wise(*filled, ",")
    line = pc.binary_join_element_wise(line, "", "\n")
    if isinstance(line, pa.ChunkedArray):
        line = line.combine_chunks()
    offsets = np.frombuffer(line.buffers()[1], dtype=np.int32)
    start = int(offsets[line.offset])
    end = int(offsets[line.offset + len(line)])
    return line.buffers()[2].to_pybytes()[start:end]


class TableWriter:
    """Stream one contract table to CSV, hashing bytes and summing totals as it goes.

    Rows whose record month is before ``min_month`` are dropped (increments).
    """

    def __init__(self, out_dir: Path, spec: TableSpec, min_month: int | None = None):
        self.spec = spec
        self.path = out_dir / spec.file
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(self.path, "wb")  # noqa: SIM115 - closed in close()
        self._hash = hashlib.sha256()
        self.rows = 0
        self.bytes = 0
        self.min_month = min_month
        self.totals = {c: 0 for c in spec.totals}
        # per month of the contract's totals_month column: [rows, {column: hundredths}]
        self.month_totals: dict[str, list] = {}
        self._emit((",".join(spec.column_names) + "\n").encode("utf-8"))

    def _emit(self, data: bytes) -> None:
        self._f.write(data)
        self._hash.update(data)
        self.bytes += len(data)

    def write(self, columns: dict[str, Column], record_month: int | np.ndarray | None = None) -> int:
        """Write rows; ``columns`` must name exactly the contract's columns.

        ``record_month`` (month index of the row's last change) filters rows for increments.
        Returns the number of rows written.
        """
        if set(columns) != set(self.spec.column_names):
            missing = set(self.spec.column_names) - set(columns)
            extra = set(columns) - set(self.spec.column_names)
            raise ValueError(f"{self.spec.name}: missing {sorted(missing)}, extra {sorted(extra)}")
        lengths = {n for n in (_col_len(c) for c in columns.values()) if n is not None}
        if len(lengths) > 1:
            raise ValueError(f"{self.spec.name}: columns of different lengths {sorted(lengths)}")
        n = lengths.pop() if lengths else 0
        idx = None
        if self.min_month is not None and record_month is not None:
            rm = np.asarray(record_month)
            if rm.ndim == 0:
                if int(rm) < self.min_month:
                    return 0
            else:
                keep = rm >= self.min_month
                if not keep.all():
                    idx = np.flatnonzero(keep)
                    n = len(idx)
        if n == 0:
            return 0
        arrays = []
        sums = {}
        for name in self.spec.column_names:
            col = _take(columns[name], idx)
            arrays.append(format_column(col, n))
            if name in self.totals:
                if not isinstance(col, Centi):
                    raise TypeError(f"totals column {name} must be Centi")
                sums[name] = np.asarray(col.values, dtype=np.int64)
                self.totals[name] += int(sums[name].sum())
        if sums and self.spec.totals_month:
            self._add_month_totals(arrays[self.spec.column_names.index(self.spec.totals_month)], sums)
        self._emit(_lines_bytes(arrays, self.spec.column_names))
        self.rows += n
        return n

    def _add_month_totals(self, month_values: pa.Array, sums: dict[str, np.ndarray]) -> None:
        """Add rows and totals per month (``YYYY-MM`` of the formatted date or timestamp)."""
        months = pc.utf8_slice_codeunits(month_values, 0, 7).fill_null("")
        labels, codes = np.unique(np.asarray(months.to_numpy(zero_copy_only=False), dtype=object),
                                  return_inverse=True)
        rows = np.bincount(codes, minlength=len(labels))
        for i, month in enumerate(labels):
            entry = self.month_totals.setdefault(str(month), [0, dict.fromkeys(self.totals, 0)])
            entry[0] += int(rows[i])
        for name, values in sums.items():
            per_month = np.zeros(len(labels), dtype=np.int64)
            np.add.at(per_month, codes, values)
            for i, month in enumerate(labels):
                self.month_totals[str(month)][1][name] += int(per_month[i])

    def close(self) -> dict:
        """Close the file and return its manifest entry."""
        self._f.close()
        entry = {
            "system": self.spec.system,
            "table": self.spec.name,
            "rows": self.rows,
            "bytes": self.bytes,
            "sha256": self._hash.hexdigest(),
        }
        if self.totals:
            entry["totals"] = {c: fmt_centi(np.array([v]))[0].as_py() for c, v in self.totals.items()}
        if self.spec.totals_month and self.totals:
            # the same sums per month, for the warehouse's reconciliation (fct_reconciliation_months)
            entry["month_totals"] = {
                "column": self.spec.totals_month,
                "months": {
                    month: {"rows": rows, **{c: fmt_centi(np.array([v]))[0].as_py() for c, v in sums.items()}}
                    for month, (rows, sums) in sorted(self.month_totals.items())
                },
            }
        return entry

    def abort(self) -> None:
        self._f.close()


class PlainCsv:
    """A small CSV writer for the truth files (same formatting, no contract, no manifest)."""

    def __init__(self, path: Path, columns: Sequence[str], min_month: int | None = None):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.columns = tuple(columns)
        self.min_month = min_month
        self._f = open(path, "wb")  # noqa: SIM115 - closed in close()
        self._f.write((",".join(self.columns) + "\n").encode("utf-8"))
        self.rows = 0

    def write(self, columns: dict[str, Column], record_month: int | np.ndarray | None = None) -> None:
        lengths = {n for n in (_col_len(c) for c in columns.values()) if n is not None}
        n = lengths.pop() if lengths else 0
        idx = None
        if self.min_month is not None and record_month is not None:
            rm = np.asarray(record_month)
            if rm.ndim == 0:
                if int(rm) < self.min_month:
                    return
            else:
                keep = rm >= self.min_month
                if not keep.all():
                    idx = np.flatnonzero(keep)
                    n = len(idx)
        if n == 0:
            return
        arrays = [format_column(_take(columns[c], idx), n) for c in self.columns]
        self._f.write(_lines_bytes(arrays, self.columns))
        self.rows += n

    def close(self) -> None:
        self._f.close()


def month_index(ym: str) -> int:
    """``'2023-01'`` -> months since year 0 (``2023 * 12 + 0``)."""
    try:
        y, m = ym.split("-")
        yi, mi = int(y), int(m)
    except ValueError:
        raise ValueError(f"month must look like YYYY-MM, got {ym!r}") from None
    if len(y) != 4 or len(m) != 2 or not 1 <= mi <= 12:
        raise ValueError(f"month must look like YYYY-MM, got {ym!r}")
    return yi * 12 + mi - 1


def month_str(mi: int) -> str:
    return f"{mi // 12:04d}-{mi % 12 + 1:02d}"


def month_first_day(mi: int) -> int:
    """Days since epoch of the first day of absolute month ``mi``."""
    y, m = divmod(mi, 12)
    return int(np.datetime64(f"{y:04d}-{m + 1:02d}-01", "D").astype(np.int64))


def day_str(day: int) -> str:
    return str(np.datetime64(int(day), "D"))
