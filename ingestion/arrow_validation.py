"""The contract's rules over whole columns (pyarrow + numpy): the loader's fast path.

:func:`valid_mask` tells, for an Arrow array of strings, exactly which values
:func:`validation.validate_value` accepts. It is a vectorised *test* only: the reason for a rejected
value always comes from ``validate_value``, the one definition of every rule (the loader calls it on
the few values the mask refuses). ``tests/test_ingest_validation.py`` asserts that the mask and
``validate_value`` agree on a table of tricky values, on every contract column, on random strings
and on hypothesis-mutated valid values.

How each rule is tested without a per-value Python call:

* fixed-width formats (``date``, ``timestamp``, ``month``, patterns ``^PREFIX[0-9]{n}$``, mobile
  phone) read the values of that width as 8-byte words: digits tested 8 bytes at a time (SWAR),
  separators by mask, numbers by shift and multiply; calendar dates (leap years only where the day
  is 29 February), hour/minute/second ranges. Resident ID and USCC use ``rows x 18`` digit matrices
  (real birth date, ISO 7064 MOD 11-2 and GB 32100 MOD 31 check characters);
* ``integer`` / ``numeric`` (see :func:`numbers`): a float64 parse by Arrow plus first/last-byte
  checks, or the rule's regex in RE2; values scaled to exact integers serve ``min``/``max`` and the
  manifest totals (values with more than 15 significant digits go to Python);
* ``allowed`` is ``pyarrow.compute.is_in``; other patterns use RE2 (``match_substring_regex``) when
  they only use constructs RE2 and Python read alike, else Python.

:class:`FileCheck` reads a CSV file block by block with ``pyarrow.csv.open_csv`` (every column as a
string, low-cardinality ones dictionary-encoded and checked once per distinct value; bounded
memory) and collects the bad cells, the totals, a 64-bit hash of each line's key (duplicate keys
are searched among equal hashes and confirmed by the loader on the loaded rows) and the lines
holding a double quote inside a value. PostgreSQL's CSV reader and Arrow's read well-formed quoting
alike, but not a quote in the middle of a field (``ab"c"d``): the loader checks those lines again
on what COPY stored. A value holding a line break, a row of the wrong width or bytes Arrow cannot
decode raise :class:`Divergence` (the loader then uses its line-by-line path).

Arrow arrays are built with ``pa.Array.from_buffers``, never ``pa.array``/``pa.scalar`` or
``to_numpy(zero_copy_only=False)``: those import pandas on first use (half a second per process).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from . import validation
from .contract import ColumnSpec, TableSpec
from .validation import USCC_CHARSET, has_rules, parse_decimal, validate_value

# Bytes of CSV per Arrow block (memory per block is a small multiple). 4 MiB rather than 1: with
# dictionary-encoded columns the per-block cost (numpy calls on small arrays) dominates the rules.
BLOCK_SIZE = 1 << 22
# A column with rules (or in the key, or summed for the totals) is read dictionary-encoded when the
# file's first block holds at most this share of distinct values in it: its rules, key hash and number
# parsing then run once per distinct value of a block, and a row costs an index (readings: meter_id
# 1/30, reading_date 1/1000, quality, kwh 1/5). Arrow's hash per value costs about as much as one
# cheap rule (~17 ns), so high-cardinality columns (ids) stay plain strings.
DICTIONARY_SHARE = 0.25
DICTIONARY_MIN_ROWS = 1000  # a smaller first block: the file is small, nothing to gain
MAX_DIGITS = 15  # significant digits of a value read exactly through a float64
# Key hashes kept for the duplicate search: 8 bytes per line, 9 while searching (a bucket number per
# line) plus one bucket's sorted copy. A longer file has its duplicate keys found by the server
# (SQL: a window sort of every row, 132 s for the 112.5 M readings of 100k x 36; ADR 0102).
MAX_HASHED_LINES = 200_000_000
# The search sorts the hashes of one bucket (their top 4 bits) at a time, not all of them at once.
HASH_BUCKET_BITS = 4

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_DAYS = np.array([0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)  # 29: see _calendar
_RID_WEIGHTS = np.array((7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2), dtype=np.int32)
_RID_CHECK = np.frombuffer(b"10X98765432", dtype=np.uint8)
_USCC_WEIGHTS = np.array((1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28), dtype=np.int64)
_USCC_VALUE = np.full(256, 255, dtype=np.uint8)
for _i, _c in enumerate(USCC_CHARSET):
    _USCC_VALUE[ord(_c)] = _i
_QUOTE, _LF, _CR, _DASH, _DOT, _COLON, _SPACE = 34, 10, 13, 45, 46, 58, 32
_SPECIAL = np.zeros(256, dtype=np.uint8)  # 1: double quote, 2: line break
_SPECIAL[_QUOTE] = 1
_SPECIAL[_LF] = _SPECIAL[_CR] = 2


class Divergence(Exception):
    """Arrow does not read the file the way COPY does (line breaks in values, wrong widths, bytes)."""


# -- Arrow arrays from numpy / Python (see the module docstring on pandas) -------------------
def _indices(values: np.ndarray) -> pa.Array:
    values = np.ascontiguousarray(values, dtype=np.int64)
    return pa.Array.from_buffers(pa.int64(), values.size, [None, pa.py_buffer(values)])


def _unsigned(values: np.ndarray) -> pa.Array:
    values = np.ascontiguousarray(values, dtype=np.uint64)
    return pa.Array.from_buffers(pa.uint64(), values.size, [None, pa.py_buffer(values)])


def _booleans(values: np.ndarray) -> pa.Array:
    bits = np.packbits(np.asarray(values, dtype=bool), bitorder="little")
    return pa.Array.from_buffers(pa.bool_(), len(values), [None, pa.py_buffer(bits)])


def scalar(value: str | bytes | bool) -> pa.Scalar:
    """An Arrow scalar (string, binary or boolean) without ``pa.scalar`` (which imports pandas)."""
    if isinstance(value, bool):
        return _booleans(np.array([value]))[0]
    if isinstance(value, str):
        return strings([value])[0]
    offsets = np.array([0, len(value)], dtype=np.int32)
    return pa.Array.from_buffers(pa.binary(), 1, [None, pa.py_buffer(offsets), pa.py_buffer(value)])[0]


def _to_bools(array: pa.Array) -> np.ndarray:
    """A boolean Arrow array (nulls read as False) as numpy, without pandas."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if array.null_count:
        array = pc.fill_null(array, scalar(False))
    n = len(array)
    if n == 0:
        return np.zeros(0, dtype=bool)
    bits = np.frombuffer(array.buffers()[1], dtype=np.uint8)
    return np.unpackbits(bits, count=array.offset + n, bitorder="little")[array.offset:].astype(bool)


def _to_floats(array: pa.Array) -> np.ndarray:
    """A float64 Arrow array without nulls as numpy (zero copy)."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if len(array) == 0:
        return np.zeros(0, dtype=np.float64)
    return np.frombuffer(array.buffers()[1], dtype=np.float64, count=len(array), offset=array.offset * 8)


def strings(values: Sequence[str | None]) -> pa.Array:
    """A string array of ``values`` (None read as '', like an empty CSV field)."""
    encoded = [("" if v is None else v).encode("utf-8") for v in values]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum([len(b) for b in encoded], out=offsets[1:])
    if offsets[-1] < 2**31:
        offsets = offsets.astype(np.int32)
        kind = pa.string()
    else:  # pragma: no cover - more than 2 GiB of text
        kind = pa.large_string()
    return pa.Array.from_buffers(kind, len(encoded), [None, pa.py_buffer(offsets),
                                                      pa.py_buffer(b"".join(encoded))])


# -- Arrow string arrays as numpy buffers ------------------------------------------------------
def _parts(array: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(offsets as int64, n + 1 of them; the data bytes) of a string array (nulls read as '')."""
    if array.null_count:
        array = pc.fill_null(array, scalar(""))
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    n = len(array)
    buffers = array.buffers()
    width = np.int64 if pa.types.is_large_string(array.type) else np.int32
    if buffers[1] is None:
        offsets = np.zeros(n + 1, dtype=np.int64)
    else:
        offsets = np.frombuffer(buffers[1], dtype=width, count=n + 1,
                                offset=array.offset * np.dtype(width).itemsize).astype(np.int64)
    data = np.frombuffer(buffers[2], dtype=np.uint8) if buffers[2] is not None and buffers[2].size \
        else np.zeros(0, dtype=np.uint8)
    return offsets, data


def _fixed(offsets: np.ndarray, data: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows whose value is ``width`` bytes long, and those values as a rows x width uint8 matrix."""
    lens = np.diff(offsets)
    rows = np.flatnonzero(lens == width)
    if rows.size == lens.size:  # all of them: the bytes are contiguous
        matrix = data[offsets[0]:offsets[-1]].reshape(-1, width)
    else:
        matrix = data[offsets[:-1][rows, None] + np.arange(width)]
    return rows, matrix


def _is_digit(column: np.ndarray) -> np.ndarray:
    return (column - np.uint8(48)) < 10


def _digits(matrix: np.ndarray, columns: Iterable[int]) -> np.ndarray:
    """All of the given columns hold ASCII digits (column by column: cheap on row-major blocks)."""
    ok = np.ones(matrix.shape[0], dtype=bool)
    for j in columns:
        ok &= _is_digit(matrix[:, j])
    return ok


def _number(matrix: np.ndarray, start: int, width: int) -> np.ndarray:
    value = np.zeros(matrix.shape[0], dtype=np.int32)
    for i in range(start, start + width):
        value = value * 10 + (matrix[:, i].astype(np.int32) - 48)
    return value


# Fixed-width layouts are tested on 8-byte words (SWAR: "SIMD within a register"): a byte b is an
# ASCII digit iff t = b ^ 0x30 <= 9, i.e. the high bit of ((t & 0x7F) + 0x76) | t is clear (no
# carry can cross bytes). A handful of numpy operations per word instead of several per byte.
_LOW7 = np.uint64(0x7F7F7F7F7F7F7F7F)
_ADD = np.uint64(0x7676767676767676)
_ZERO = np.uint64(0x3030303030303030)


def _word_starts(width: int) -> list[int]:
    if width <= 8:
        return [0]
    starts = list(range(0, width - 7, 8))
    if starts[-1] != width - 8:
        starts.append(width - 8)  # overlaps the previous word
    return starts


def _words(matrix: np.ndarray, width: int) -> list[np.ndarray]:
    """8-byte words covering every byte of each row of a rows x width matrix (see _word_starts)."""
    rows = matrix.shape[0]
    if width == 0:
        return []
    if rows == 0:
        return [np.zeros(0, dtype=np.uint64) for _ in _word_starts(width)]
    if width < 8:
        padded = np.zeros((rows, 8), dtype=np.uint8)
        padded[:, :width] = matrix
        return [padded.view("<u8")[:, 0]]
    matrix = np.ascontiguousarray(matrix)
    # unaligned strided views, copied once into aligned arrays (ufuncs on them are far cheaper)
    return [np.ndarray((rows,), dtype="<u8", buffer=matrix, offset=start, strides=(width,)).astype(np.uint64)
            for start in _word_starts(width)]


class _Layout:
    """Digits and literal bytes at fixed positions of a fixed-width value, tested word by word."""

    def __init__(self, width: int, digits: Iterable[int], literals: dict[int, str]) -> None:
        self.width = width
        digits = set(digits)
        self.tests: list[tuple[np.uint64, np.uint64, np.uint64]] = []
        self.where: dict[int, tuple[int, np.uint64]] = {}
        for i, start in enumerate(_word_starts(width)):
            select = mask = value = 0
            for position in range(start, min(start + 8, width)):
                if position in self.where:
                    continue
                shift = 8 * (position - start)
                self.where[position] = (i, np.uint64(shift))
                if position in digits:
                    select |= 0x80 << shift
                elif position in literals:
                    mask |= 0xFF << shift
                    value |= ord(literals[position]) << shift
            self.tests.append((np.uint64(select), np.uint64(mask), np.uint64(value)))

    def check(self, words: list[np.ndarray]) -> np.ndarray:
        ok = np.ones(words[0].size, dtype=bool)
        for word, (select, mask, value) in zip(words, self.tests, strict=True):
            if select:
                t = word ^ _ZERO
                ok &= ((((t & _LOW7) + _ADD) | t) & select) == 0
            if mask:
                ok &= (word & mask) == value
        return ok

    def number(self, words: list[np.ndarray], position: int, count: int) -> np.ndarray:
        """The value of ``count`` (1, 2 or 4) digits from ``position``, read from one word
        (garbage where they are not digits)."""
        i, shift = self.where[position]
        assert self.where[position + count - 1] == (i, shift + np.uint64(8 * (count - 1))), "one word"
        x = ((words[i] ^ _ZERO) >> shift) & np.uint64((1 << (8 * count)) - 1)
        if count == 2:
            x = (x & np.uint64(0xFF)) * np.uint64(10) + (x >> np.uint64(8))
        elif count == 4:  # two pairs at once, then the pairs
            x = (x & np.uint64(0x00FF00FF)) * np.uint64(10) + ((x >> np.uint64(8)) & np.uint64(0x00FF00FF))
            x = (x & np.uint64(0xFFFF)) * np.uint64(100) + (x >> np.uint64(16))
        elif count != 1:  # pragma: no cover - no layout needs it
            raise ValueError(count)
        return x.astype(np.int64)


_DATE = _Layout(10, (0, 1, 2, 3, 5, 6, 8, 9), {4: "-", 7: "-"})
_TIMESTAMP = _Layout(19, (0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18),
                     {4: "-", 7: "-", 10: " ", 13: ":", 16: ":"})
_MONTH = _Layout(7, (0, 1, 2, 3, 5, 6), {4: "-"})
_PHONE = _Layout(11, range(1, 11), {0: "1"})


def _calendar(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> np.ndarray:
    """A real date of the proleptic Gregorian calendar with year >= 1 (Python's ``datetime.date``)."""
    ok = (year >= 1) & (month >= 1) & (month <= 12) & (day >= 1) & (day <= _DAYS[np.clip(month, 0, 12)])
    february_29 = (month == 2) & (day == 29)
    if february_29.any():  # the leap-year test (divisions) only where it matters
        leap_year = year[february_29]
        ok[february_29] &= (leap_year % 4 == 0) & ((leap_year % 100 != 0) | (leap_year % 400 == 0))
    return ok


def _date_words(matrix: np.ndarray, low: int | None = None, high: int | None = None) -> np.ndarray:
    words = _words(matrix, 10)
    ok = _DATE.check(words)
    year, month, day = _DATE.number(words, 0, 4), _DATE.number(words, 5, 2), _DATE.number(words, 8, 2)
    ok &= _calendar(year, month, day)
    if low is not None or high is not None:
        number = year * 10000 + month * 100 + day
        if low is not None:
            ok &= number >= low
        if high is not None:
            ok &= number <= high
    return ok


def _date(matrix: np.ndarray, at: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Valid ``YYYY-MM-DD`` at column ``at`` (a real calendar date, year >= 1) and YYYYMMDD."""
    ok = _digits(matrix, [at, at + 1, at + 2, at + 3, at + 5, at + 6, at + 8, at + 9])
    ok &= (matrix[:, at + 4] == _DASH) & (matrix[:, at + 7] == _DASH)
    year, month, day = _number(matrix, at, 4), _number(matrix, at + 5, 2), _number(matrix, at + 8, 2)
    ok &= _calendar(year, month, day)
    return ok, year * 10000 + month * 100 + day


def _timestamp(matrix: np.ndarray) -> np.ndarray:
    words = _words(matrix, 19)
    ok = _TIMESTAMP.check(words)
    ok &= _calendar(_TIMESTAMP.number(words, 0, 4), _TIMESTAMP.number(words, 5, 2),
                    _TIMESTAMP.number(words, 8, 2))
    ok &= (_TIMESTAMP.number(words, 11, 2) <= 23) & (_TIMESTAMP.number(words, 14, 2) <= 59) \
        & (_TIMESTAMP.number(words, 17, 2) <= 59)
    return ok


def _month(matrix: np.ndarray) -> np.ndarray:
    words = _words(matrix, 7)
    month = _MONTH.number(words, 5, 2)
    return _MONTH.check(words) & (month >= 1) & (month <= 12)


def _pattern_layout(prefix: str, digits: int) -> _Layout:
    width = len(prefix) + digits
    return _Layout(width, range(len(prefix), width), dict(enumerate(prefix)))


def _resident_id(matrix: np.ndarray) -> np.ndarray:
    """GB 11643: [1-9][0-9]{5}(18|19|20)[0-9]{9}[0-9X], real birth date, MOD 11-2 check character."""
    first = matrix[:, 0]
    ok = (first >= ord("1")) & (first <= ord("9")) & _digits(matrix, range(1, 17))
    ok &= _is_digit(matrix[:, 17]) | (matrix[:, 17] == ord("X"))
    century = _number(matrix, 6, 2)
    ok &= (century >= 18) & (century <= 20)
    birth = np.empty((matrix.shape[0], 10), dtype=np.uint8)
    birth[:, 0:4], birth[:, 4], birth[:, 5:7], birth[:, 7], birth[:, 8:10] = (
        matrix[:, 6:10], _DASH, matrix[:, 10:12], _DASH, matrix[:, 12:14])
    ok &= _date(birth)[0]
    total = ((matrix[:, :17].astype(np.int32) - 48) * _RID_WEIGHTS).sum(axis=1)
    ok &= matrix[:, 17] == _RID_CHECK[np.clip(total % 11, 0, 10)]
    return ok


def _uscc(matrix: np.ndarray) -> np.ndarray:
    """GB 32100: 18 characters of the code's alphabet (digits at 3-8) and the MOD 31 check character."""
    values = _USCC_VALUE[matrix]
    ok = (values != 255).all(axis=1) & (values[:, 2:8] < 10).all(axis=1)
    total = (values[:, :17].astype(np.int64) * _USCC_WEIGHTS).sum(axis=1)
    return ok & (values[:, 17] == (31 - total % 31) % 31)


def _phone(matrix: np.ndarray) -> np.ndarray:
    words = _words(matrix, 11)
    return _PHONE.check(words) & (_PHONE.number(words, 1, 1) >= 3)


_CHECKS = {"resident_id": (18, _resident_id), "uscc": (18, _uscc), "phone_cn": (11, _phone)}


@dataclass
class Numbers:
    """``^-?[0-9]+(\\.[0-9]+)?$`` (or the integer form) per value, and the values scaled exactly.

    ``scaled[i] / 10**scale`` is the value where ``exact[i]``; values that match the format but have
    more than :data:`MAX_DIGITS` significant digits at that scale are not ``exact`` (Python decides).
    """

    ok: np.ndarray
    scaled: np.ndarray
    scale: int
    exact: np.ndarray


def numbers(array: pa.Array, offsets: np.ndarray, data: np.ndarray, *, fraction: bool = True,
            values: bool = True) -> Numbers:
    """The number format of every value (``NUMERIC_RE`` / ``INTEGER_RE``), and with ``values``
    the values.

    Fast case: the block holds only digits, dots and minus signs and Arrow parses every non-empty
    value completely as a ``float64``; then a value breaks the format only with a dot or a minus sign
    at the wrong end (``-``, ``.5``, ``5.``, ``-.5``), tested on its first and last bytes. Otherwise
    the rule's regex, run by RE2 (ASCII digits, ``$`` at the very end, as in Python with ``\\Z``).
    The value comes from Arrow's correctly rounded ``float64`` parsing: with at most
    :data:`MAX_DIGITS` significant digits (after scaling to the block's largest number of decimals)
    ``rint(value * 10**scale)`` is exact.
    """
    n = offsets.size - 1
    lens = np.diff(offsets)
    nonempty = lens > 0
    nothing = np.zeros(n, dtype=bool)
    floats = None
    raw = data[offsets[0]:offsets[-1]].tobytes()
    if n and data.size and not raw.translate(None, b"0123456789.-" if fraction else b"0123456789-"):
        source = array if nonempty.all() else pc.if_else(_booleans(nonempty), array, scalar("0"))
        try:
            floats = _to_floats(pc.cast(source, pa.float64()))
        except pa.ArrowInvalid:
            floats = None
    if floats is not None:
        last = data.size - 1
        first = data[np.minimum(offsets[:-1], last)]
        body = data[np.minimum(offsets[:-1] + (first == _DASH), last)]
        final = data[np.clip(offsets[1:] - 1, 0, last)]
        ok = nonempty & (lens > (first == _DASH)) & _is_digit(body) & _is_digit(final)
    else:
        ok = _to_bools(pc.match_substring_regex(array, validation.NUMERIC_RE if fraction
                                                else validation.INTEGER_RE))
    if not values or not ok.any():
        return Numbers(ok, np.zeros(n, dtype=np.int64), 0, nothing)
    dot = np.frombuffer(pc.find_substring(array, ".").buffers()[1], dtype=np.int32, count=n,
                        offset=array.offset * 4) if fraction else np.full(n, -1, dtype=np.int32)
    decimals = np.where(dot >= 0, lens - 1 - dot, 0)
    negative = data[np.minimum(offsets[:-1], max(data.size - 1, 0))] == _DASH if data.size else nothing
    n_digits = lens - (dot >= 0) - negative
    scale = int(decimals[ok].max())
    exact = ok & (n_digits - decimals + scale <= MAX_DIGITS)
    scaled = np.zeros(n, dtype=np.int64)
    if exact.any():
        if floats is None:
            source = array if ok.all() else pc.if_else(_booleans(ok), array, scalar("0"))
            floats = _to_floats(pc.cast(source, pa.float64()))
        scaled = np.rint(np.where(exact, floats, 0.0) * 10.0**scale).astype(np.int64)
    return Numbers(ok, scaled, scale, exact)


def _lengths(lens: np.ndarray) -> list[int]:
    """The distinct lengths (ascending)."""
    if lens.size == 0:
        return []
    low, high = int(lens.min()), int(lens.max())
    if low == high:
        return [low]
    return (np.flatnonzero(np.bincount(lens - low)) + low).tolist()


def _at_least(values: np.ndarray, bound: int) -> np.ndarray:
    if bound <= _INT64_MIN:
        return np.ones(values.size, dtype=bool)
    if bound > _INT64_MAX:
        return np.zeros(values.size, dtype=bool)
    return values >= np.int64(bound)


def _at_most(values: np.ndarray, bound: int) -> np.ndarray:
    if bound >= _INT64_MAX:
        return np.ones(values.size, dtype=bool)
    if bound < _INT64_MIN:
        return np.zeros(values.size, dtype=bool)
    return values <= np.int64(bound)


def _date_bound(bound: str) -> int | None:
    """A date bound as YYYYMMDD if it has the shape ``dddd-dd-dd`` (then text order = number order)."""
    if len(bound) == 10 and bound[4] == bound[7] == "-" and (bound[:4] + bound[5:7] + bound[8:]).isdigit() \
            and bound.isascii():
        return int(bound[:4] + bound[5:7] + bound[8:])
    return None


def _re2_safe(pattern: str) -> bool:
    """Patterns RE2 and Python's ``re`` read alike (no escapes, flags, POSIX classes or ``{,n}``)."""
    return not any(token in pattern for token in ("\\", "(?", "[:", "{,"))


_SIMPLE_PATTERN = validation.SIMPLE_PATTERN


def valid_mask(column: ColumnSpec, array: pa.Array) -> np.ndarray:
    """True where ``validate_value(column, value)`` is None, for every value of ``array``."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if array.null_count:
        array = pc.fill_null(array, scalar(""))
    offsets, data = _parts(array)
    return _valid(column, array, offsets, data, None)


def _valid(column: ColumnSpec, array: pa.Array, offsets: np.ndarray, data: np.ndarray,
           parsed: Numbers | None) -> np.ndarray:
    n = offsets.size - 1
    lens = np.diff(offsets)
    empty = lens == 0
    if not has_rules(column):
        return np.ones(n, dtype=bool)
    ok = ~empty
    undecided = np.zeros(n, dtype=bool)  # left to validate_value

    def fixed(width: int, test) -> None:
        rows, matrix = _fixed(offsets, data, width)
        passed = np.zeros(n, dtype=bool)
        passed[rows] = test(matrix)
        ok[:] &= passed

    kind = column.type
    if kind in ("integer", "numeric"):
        parsed = parsed or numbers(array, offsets, data, fraction=kind == "numeric",
                                  values=column.min is not None or column.max is not None)
        ok &= parsed.ok
        if column.min is not None or column.max is not None:
            factor = Decimal(10) ** parsed.scale
            within = np.ones(n, dtype=bool)
            if column.min is not None:
                low = int((Decimal(column.min) * factor).to_integral_value(ROUND_CEILING))
                within &= _at_least(parsed.scaled, low)
            if column.max is not None:
                high = int((Decimal(column.max) * factor).to_integral_value(ROUND_FLOOR))
                within &= _at_most(parsed.scaled, high)
            undecided |= ok & ~parsed.exact
            ok &= within | ~parsed.exact
    elif kind == "date":
        low = _date_bound(column.min) if column.min is not None else None
        high = _date_bound(column.max) if column.max is not None else None
        if (column.min is not None and low is None) or (column.max is not None and high is None):
            undecided |= ok
        else:
            fixed(10, lambda matrix: _date_words(matrix, low, high))
    elif kind == "timestamp":
        fixed(19, _timestamp)
    elif kind == "month":
        fixed(7, _month)
    if column.allowed is not None:
        ok &= _to_bools(pc.is_in(array, value_set=strings(column.allowed)))
    if column.pattern is not None:
        simple = _SIMPLE_PATTERN.match(column.pattern)
        if simple:
            layout = _pattern_layout(simple.group(1), int(simple.group(2)))
            fixed(layout.width, lambda matrix: layout.check(_words(matrix, layout.width)))
        elif _re2_safe(column.pattern):
            try:
                matched = pc.match_substring_regex(array, column.pattern)
            except pa.ArrowInvalid:  # RE2 refuses the pattern: Python decides
                undecided |= ok
            else:
                ok &= _to_bools(matched)
        else:
            undecided |= ok
    if column.check is not None:
        if column.check == "resident_id_or_uscc":
            def either(matrix: np.ndarray) -> np.ndarray:
                return _resident_id(matrix) | _uscc(matrix)
            fixed(18, either)
        else:
            width, test = _CHECKS[column.check]
            fixed(width, test)
    undecided &= ~empty
    if undecided.any():
        values = array.take(_indices(np.flatnonzero(undecided))).to_pylist()
        ok[undecided] = [validate_value(column, v) is None for v in values]
    if not column.required:
        ok |= empty
    return ok


def reasons(column: ColumnSpec, values: Sequence[str | None]) -> list[str | None]:
    """Per value: None where the mask accepts it, else ``validate_value``'s reason."""
    mask = valid_mask(column, strings(values))
    return [None if good else validate_value(column, value) for good, value in zip(mask, values, strict=True)]


# -- key hashes --------------------------------------------------------------------------------
_SEED = 0x9E3779B97F4A7C15
_FACTORS = [np.uint64(f) for f in (0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93,
                                   0xFF51AFD7ED558CCD)]


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser (a bijection of uint64)."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def string_hash(offsets: np.ndarray, data: np.ndarray) -> np.ndarray:
    """A 64-bit hash of every value: its bytes read as (unaligned, possibly overlapping)
    little-endian 8-byte words, each times its own odd constant, summed with the length, then
    mixed once. Values are grouped by length (a key column usually has one). Equal hashes are
    only candidates: the loader compares the values themselves."""
    n = offsets.size - 1
    lens = np.diff(offsets)
    result = np.zeros(n, dtype=np.uint64)
    for length in _lengths(lens):
        rows, matrix = _fixed(offsets, data, length)
        hashed = np.full(rows.size, (_SEED * (length + 1)) % 2**64, dtype=np.uint64)
        for j, word in enumerate(_words(matrix, length)):
            hashed += word * _FACTORS[j % len(_FACTORS)]
            if j % len(_FACTORS) == len(_FACTORS) - 1:
                hashed = _mix(hashed)
        hashed = _mix(hashed)
        if rows.size == n:
            return hashed
        result[rows] = hashed
    return result


def key_hash(columns: Sequence[_Column | tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """One hash per row for a composite key; 0 where any key value is empty (no key)."""
    result = None
    present = None
    for column in columns:
        if isinstance(column, tuple):
            offsets, data = column
            hashed, filled = string_hash(offsets, data), np.diff(offsets) > 0
        else:
            hashed = column.rows(string_hash(column.offsets, column.data))
            filled = np.diff(column.offsets) > 0
            filled = None if filled.all() else column.rows(filled)
        result = _mix(hashed if result is None else result ^ hashed)
        if filled is not None:
            present = filled if present is None else present & filled
    result[result == 0] = 1
    if present is not None:
        result[~present] = 0
    return result


def key_hash_of(rows: Iterable[Sequence[str | None]], width: int) -> np.ndarray:
    """:func:`key_hash` of key tuples given as Python values (the loaded rows of quoted lines)."""
    rows = list(rows)
    columns = []
    for i in range(width):
        columns.append(_parts(strings([r[i] for r in rows])))
    return key_hash(columns) if rows else np.zeros(0, dtype=np.uint64)


# -- a whole file ------------------------------------------------------------------------------
@dataclass
class _Total:
    scaled: int = 0  # sum of exact values, at scale `scale`
    scale: int = 0
    extra: Decimal = Decimal(0)  # sum of values with too many digits
    complete: bool = True

    def add_scaled(self, value: int, scale: int) -> None:
        if scale > self.scale:
            self.scaled *= 10 ** (scale - self.scale)
            self.scale = scale
        self.scaled += value * 10 ** (self.scale - scale)

    @property
    def value(self) -> Decimal:
        return Decimal(self.scaled).scaleb(-self.scale) + self.extra


@dataclass
class FileOutcome:
    """What :class:`FileCheck` found; the loader completes it with the loaded rows it re-checks."""

    header: list[str]
    key: tuple[str, ...]
    rows: int = 0
    rejects: list[tuple[int, str, str]] = field(default_factory=list)  # (line, field, reason)
    bad_lines: int = 0  # lines with at least one bad field (all of them, kept or not)
    kept_all: bool = True  # rejects holds every bad field (else only those of the first lines)
    bad_blocks: list[tuple[int, np.ndarray, int]] = field(default_factory=list)  # first row, packed bits, rows
    quoted_lines: list[int] = field(default_factory=list)
    totals: dict[str, _Total] = field(default_factory=dict)
    hashes: list[np.ndarray] = field(default_factory=list)
    hashed_all: bool = True  # False past MAX_HASHED_LINES: the loader compares keys in SQL instead
    seconds: float = 0.0
    cpu: float = 0.0
    _candidates: np.ndarray | None = field(default=None, repr=False)

    # -- completed by the loader ---------------------------------------------------------------
    def recheck(self, table: TableSpec, loaded: list[Sequence[str | None]]) -> None:
        """Validate the loaded rows (``_line_number`` first, then the header's columns) of the
        quoted lines in Python: what COPY stored is what counts."""
        specs = [table.column(name) for name in self.header]
        index = {name: i for i, name in enumerate(self.header)}
        key_rows = []
        for row in loaded:
            line, values = int(row[0]), row[1:]
            bad = False
            for spec, value in zip(specs, values, strict=True):
                reason = validate_value(spec, value)
                if reason:
                    self.rejects.append((line, spec.name, reason))
                    bad = True
            if bad:
                self.bad_lines += 1
                self._mark_bad(line)
            for column, total in self.totals.items():
                amount = parse_decimal(values[index[column]])
                if amount is None:
                    total.complete = False
                else:
                    total.extra += amount
            key_rows.append([values[index[k]] for k in self.key])
        if self.key and loaded and self.hashed_all:
            fresh = key_hash_of(key_rows, len(self.key))
            rows = np.array([int(r[0]) for r in loaded], dtype=np.int64) - 2
            starts = np.cumsum([0] + [b.size for b in self.hashes])
            block = np.searchsorted(starts, rows, side="right") - 1
            for i in np.unique(block):  # the hashes stay in their blocks (no second copy of all)
                inside = block == i
                self.hashes[i][rows[inside] - starts[i]] = fresh[inside]
            self._candidates = None

    def _mark_bad(self, line: int) -> None:
        row = line - 2
        bits = np.zeros(1, dtype=np.uint8)
        bits[0] = 0x80
        self.bad_blocks.append((row, bits, 1))

    def key_hashes(self) -> np.ndarray:
        """Every line's key hash (0: no key to compare), in one array (a copy: for tests)."""
        return np.concatenate(self.hashes) if self.hashes else np.zeros(0, dtype=np.uint64)

    def duplicate_candidates(self) -> np.ndarray:
        """Line numbers of every line whose key hash another line shares (ascending)."""
        if self._candidates is None:
            self._candidates = self._find_candidates()
        return self._candidates

    def _find_candidates(self) -> np.ndarray:
        none = np.zeros(0, dtype=np.int64)
        if not self.key or not self.hashed_all or not self.hashes:
            return none
        # Equal hashes share their top bits: sort and compare one bucket at a time. The hashes stay
        # in their blocks; the working copy is one bucket's (1/16), not all of them (ADR 0102).
        shift = np.uint64(64 - HASH_BUCKET_BITS)
        buckets = [(block >> shift).astype(np.uint8) for block in self.hashes]
        repeated = []
        for bucket in range(1 << HASH_BUCKET_BITS):
            part = np.concatenate([block[of == bucket] for block, of in zip(self.hashes, buckets, strict=True)])
            part = part[part != 0]
            part.sort()
            same = part[1:][part[1:] == part[:-1]]
            if same.size:
                repeated.append(np.unique(same))
        del buckets
        if not repeated:
            return none
        value_set = _unsigned(np.concatenate(repeated))
        hits, start = [], 0
        for block in self.hashes:
            hits.append(np.flatnonzero(_to_bools(pc.is_in(_unsigned(block), value_set=value_set))) + start)
            start += block.size
        return np.concatenate(hits) + 2

    def is_bad(self, lines: np.ndarray) -> np.ndarray:
        """Whether each of ``lines`` has a bad field (from the per-block bit sets)."""
        rows = np.asarray(lines, dtype=np.int64) - 2
        result = np.zeros(rows.size, dtype=bool)
        for first, bits, count in self.bad_blocks:
            inside = (rows >= first) & (rows < first + count)
            if inside.any():
                unpacked = np.unpackbits(bits, count=count).astype(bool)
                result[inside] |= unpacked[rows[inside] - first]
        return result


@dataclass
class _Column:
    """One column of a block: its values (the dictionary of a dictionary-encoded column, else every
    value) and, for a dictionary column, each row's index into them."""

    values: pa.Array
    offsets: np.ndarray
    data: np.ndarray
    index: np.ndarray | None

    @classmethod
    def of(cls, array: pa.Array) -> _Column:
        if pa.types.is_dictionary(array.type):
            index = np.frombuffer(array.indices.buffers()[1], dtype=np.int32, count=len(array),
                                  offset=array.indices.offset * 4)
            values = array.dictionary
            return cls(values, *_parts(values), index)
        return cls(array, *_parts(array), None)

    def rows(self, per_value: np.ndarray) -> np.ndarray:
        """A per-value array as a per-row array."""
        return per_value if self.index is None else per_value[self.index]

    def take(self, rows: np.ndarray) -> list[str]:
        if self.index is not None:
            rows = self.index[rows]
        return self.values.take(_indices(rows)).to_pylist()


def csv_options(header: list[str], codec: str, dictionary: Iterable[str] = ()) -> tuple[
        pacsv.ReadOptions, pacsv.ParseOptions, pacsv.ConvertOptions]:
    """How :class:`FileCheck` reads a file: the header line skipped (names from ``header``), every
    column a string (empty = '', never null; the ``dictionary`` columns dictionary-encoded strings),
    RFC 4180 quoting, no line breaks inside values, empty lines kept (COPY refuses them too), UTF-8
    checked (other encodings transcoded)."""
    read = pacsv.ReadOptions(column_names=header, skip_rows=1, block_size=BLOCK_SIZE,
                             use_threads=False, encoding="utf8" if codec == "utf-8" else codec)
    parse = pacsv.ParseOptions(delimiter=",", quote_char='"', double_quote=True, escape_char=False,
                               newlines_in_values=False, ignore_empty_lines=False)
    encoded = set(dictionary)
    convert = pacsv.ConvertOptions(column_types={name: _DICTIONARY if name in encoded else pa.string()
                                                 for name in header},
                                   strings_can_be_null=False, quoted_strings_can_be_null=False,
                                   null_values=[], check_utf8=True)
    return read, parse, convert


_DICTIONARY = pa.dictionary(pa.int32(), pa.string())


class FileCheck:
    """Validate a CSV file with Arrow, block by block (see the module docstring)."""

    def __init__(self, table: TableSpec, header: list[str], *, keep_lines: int) -> None:
        self.table = table
        self.header = header
        self.specs = [table.column(name) for name in header]
        self.keep_lines = keep_lines
        self.key_index = [header.index(k) for k in table.key] if all(k in header for k in table.key) else []
        self.totals = [c for c in table.totals if c in header]

    def run(self, path, codec: str, stop: threading.Event | None = None) -> FileOutcome:
        outcome = FileOutcome(header=list(self.header),
                              key=tuple(self.table.key) if self.key_index else ())
        outcome.totals = {c: _Total() for c in self.totals}
        try:
            read, parse, convert = csv_options(self.header, codec, self._dictionary_columns(path, codec))
            reader = pacsv.open_csv(path, read_options=read, parse_options=parse, convert_options=convert)
            first = 0
            for batch in reader:
                if stop is not None and stop.is_set():
                    break
                self._block(batch, first, outcome)
                first += batch.num_rows
        except (pa.ArrowException, UnicodeError) as error:
            raise Divergence(str(error).splitlines()[0] if str(error) else type(error).__name__) from None
        outcome.rows = first
        outcome.duplicate_candidates()  # here, in the validating thread, while COPY runs
        return outcome

    def _dictionary_columns(self, path, codec: str) -> list[str]:
        """The columns worth reading dictionary-encoded (see :data:`DICTIONARY_SHARE`), judged on the
        file's first block read as plain strings."""
        read, parse, convert = csv_options(self.header, codec)
        reader = pacsv.open_csv(path, read_options=read, parse_options=parse, convert_options=convert)
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            return []
        finally:
            reader.close()
        if batch.num_rows < DICTIONARY_MIN_ROWS:
            return []
        chosen = []
        for i, spec in enumerate(self.specs):
            if has_rules(spec) or i in self.key_index or spec.name in self.totals:
                distinct = pc.count_distinct(batch.column(i)).as_py()
                if distinct <= DICTIONARY_SHARE * batch.num_rows:
                    chosen.append(spec.name)
        return chosen

    def _block(self, batch: pa.RecordBatch, first: int, outcome: FileOutcome) -> None:
        n = batch.num_rows
        if n == 0:
            return
        columns = [_Column.of(batch.column(i)) for i in range(len(self.header))]
        quoted = np.zeros(n, dtype=bool)
        for column in columns:
            offsets, data = column.offsets, column.data
            raw = data[offsets[0]:offsets[-1]].tobytes()  # memchr is far cheaper than a table lookup
            if b"\n" in raw or b"\r" in raw:
                raise Divergence("a value holds a line break (quoted line breaks are not supported)")
            if b'"' not in raw:
                continue
            flags = _SPECIAL[data[offsets[0]:offsets[-1]]]
            cumulative = np.zeros(flags.size + 1, dtype=np.int64)
            np.cumsum(flags, out=cumulative[1:])
            base = offsets[0]
            quoted |= column.rows((cumulative[offsets[1:] - base] - cumulative[offsets[:-1] - base]) > 0)
        bad_any = np.zeros(n, dtype=bool)
        cells: list[tuple[np.ndarray, int]] = []
        for i, (spec, column) in enumerate(zip(self.specs, columns, strict=True)):
            parsed = None
            if spec.name in outcome.totals:
                parsed = numbers(column.values, column.offsets, column.data, fraction=True)
                self._add_total(outcome.totals[spec.name], column, parsed, quoted)
                if spec.type != "numeric":
                    parsed = None
            good = _valid(spec, column.values, column.offsets, column.data, parsed)
            if good.all():  # every (distinct) value passes: no row is bad
                continue
            bad = ~column.rows(good) & ~quoted
            if bad.any():
                bad_any |= bad
                cells.append((bad, i))
        if quoted.any():
            outcome.quoted_lines.extend((np.flatnonzero(quoted) + first + 2).tolist())
        if self.key_index and first + n > MAX_HASHED_LINES:
            outcome.hashed_all = False
            outcome.hashes = []
        elif self.key_index:
            hashes = key_hash([columns[i] for i in self.key_index])
            if quoted.any():
                hashes[quoted] = 0  # set from the loaded rows by FileOutcome.recheck
            outcome.hashes.append(hashes)
        count = int(bad_any.sum())
        if not count:
            return
        outcome.bad_blocks.append((first, np.packbits(bad_any), n))
        rows = np.flatnonzero(bad_any)
        room = self.keep_lines - outcome.bad_lines
        outcome.bad_lines += count
        if room < rows.size:
            outcome.kept_all = False
            rows = rows[:max(room, 0)]
        if not rows.size:
            return
        limit = rows[-1]
        for bad, i in cells:
            at = np.flatnonzero(bad[:limit + 1])
            spec = self.specs[i]
            for row, value in zip(at.tolist(), columns[i].take(at), strict=True):
                reason = validate_value(spec, value)
                if reason is not None:
                    outcome.rejects.append((first + row + 2, spec.name, reason))

    @staticmethod
    def _add_total(total: _Total, column: _Column, parsed: Numbers, quoted: np.ndarray) -> None:
        simple = parsed.exact.all() and not quoted.any()  # then ok and exact everywhere
        if simple:
            ok = exact = None
        else:
            ok, exact = column.rows(parsed.ok), column.rows(parsed.exact)
            if not (ok | quoted).all():
                total.complete = False
            exact &= ~quoted
        if column.index is None:
            scaled = parsed.scaled if exact is None else parsed.scaled[exact]
            weights = None
        else:  # per distinct value: its scaled value times the number of rows holding it
            index = column.index if exact is None else column.index[exact]
            weights = np.bincount(index, minlength=parsed.scaled.size)
            scaled = parsed.scaled
        if scaled.size:
            # each half's sum cannot overflow: a row adds less than 2**32 to the low half's sum
            high, low = scaled >> 32, scaled & 0xFFFFFFFF
            if weights is None:
                high_sum, low_sum = int(high.sum()), int(low.sum())
            else:
                high_sum, low_sum = int((high * weights).sum()), int((low * weights).sum())
            total.add_scaled((high_sum << 32) + low_sum, parsed.scale)
        if simple:
            return
        inexact = np.flatnonzero(ok & ~column.rows(parsed.exact) & ~quoted)
        if inexact.size:
            for value in column.take(inexact):
                total.extra += Decimal(value)


def bound_lines(rows: int | None, max_reject_rate: float, minimum: int) -> int:
    """Bad lines whose fields are kept: enough for a file that loads, and the sample of one that fails."""
    if rows is None:
        return 2**62
    return max(minimum, int(rows * max_reject_rate)) + 1


__all__ = ["BLOCK_SIZE", "Divergence", "FileCheck", "FileOutcome", "Numbers", "bound_lines", "csv_options",
           "key_hash", "key_hash_of", "numbers", "reasons", "scalar", "string_hash", "strings", "valid_mask"]

