"""Validation rules: one unit test per rule, the vectorised checks against the Python rules, masking."""

from __future__ import annotations

import io
import uuid
from decimal import Decimal

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ingest_helpers import resident_id, uscc

from gridcredit.ingestion import arrow_validation as av
from gridcredit.ingestion import validation
from gridcredit.ingestion.contract import ColumnSpec, load_contract
from gridcredit.ingestion.loader import _prefix_lines
from gridcredit.ingestion.validation import mask_value, validate_value

TEXT_REQ = ColumnSpec("c", required=True)
INTEGER = ColumnSpec("c", type="integer")
NUMERIC = ColumnSpec("c", type="numeric", min=Decimal("0"), max=Decimal("10"))
DATE = ColumnSpec("c", type="date", min="1990-01-01", max="2100-12-31")
TIMESTAMP = ColumnSpec("c", type="timestamp")
MONTH = ColumnSpec("c", type="month")
ALLOWED = ColumnSpec("c", allowed=("actual", "estimated"))
PATTERN = ColumnSpec("c", pattern="^M[0-9]{10}$")
PATTERN_GENERIC = ColumnSpec("c", pattern="^[A-Z]{2}-[0-9]+$")
RESIDENT = ColumnSpec("c", check="resident_id", personal=True)
USCC = ColumnSpec("c", check="uscc")
EITHER = ColumnSpec("c", check="resident_id_or_uscc", personal=True)
PHONE = ColumnSpec("phone", check="phone_cn", personal=True)

GOOD_RID = resident_id()  # 110105198001011238-like, valid check digit
GOOD_USCC = uscc()


def _bad_check_digit(value: str, alphabet: str) -> str:
    return value[:-1] + next(c for c in alphabet if c != value[-1])


# -- one test per rule -------------------------------------------------------------------------
def test_required():
    assert validate_value(TEXT_REQ, None) == validation.REQUIRED
    assert validate_value(TEXT_REQ, "") == validation.REQUIRED
    assert validate_value(TEXT_REQ, "x") is None
    assert validate_value(ColumnSpec("c"), "") is None  # empty is fine when not required


def test_integer():
    for good in ("0", "-12", "123456789012345678901234567890"):
        assert validate_value(INTEGER, good) is None
    for bad in ("1.0", "+1", "1e3", " 1", "--1", "-", "1-", "abc"):
        assert validate_value(INTEGER, bad) == "not an integer"


def test_numeric():
    for good in ("0", "1.5", "10", "10.00", "0.01"):
        assert validate_value(NUMERIC, good) is None
    for bad in ("1.", ".5", "-.5", "1.2.3", "1,5", "1e2", "NaN", "+1", "-"):
        assert validate_value(NUMERIC, bad) == "not a number"


def test_min_and_max():
    assert validate_value(NUMERIC, "-0.01") == "below minimum 0"
    assert validate_value(NUMERIC, "-0.00") is None  # equal to the minimum
    assert validate_value(NUMERIC, "10.01") == "above maximum 10"
    assert validate_value(DATE, "1989-12-31") == "before minimum 1990-01-01"
    assert validate_value(DATE, "2101-01-01") == "after maximum 2100-12-31"


def test_date_calendar():
    assert validate_value(DATE, "2024-02-29") is None
    assert validate_value(DATE, "2023-02-29") == "not a valid date (YYYY-MM-DD)"
    assert validate_value(DATE, "2000-02-29") is None
    assert validate_value(DATE, "2100-02-29") == "not a valid date (YYYY-MM-DD)"
    for bad in ("2024-04-31", "2024-13-01", "2024-00-10", "2024-1-01", "2024/01/01", "20240101",
                "2024-01-01 00:00:00"):
        assert validate_value(DATE, bad) == "not a valid date (YYYY-MM-DD)"


def test_timestamp():
    assert validate_value(TIMESTAMP, "2024-02-29 23:59:59") is None
    for bad in ("2024-02-29T23:59:59", "2024-02-30 00:00:00", "2024-01-01 24:00:00",
                "2024-01-01 00:60:00", "2024-01-01 00:00:60", "2024-01-01", "2024-01-01 0:00:00"):
        assert validate_value(TIMESTAMP, bad) == "not a valid timestamp (YYYY-MM-DD HH:MM:SS)"


def test_month():
    assert validate_value(MONTH, "2024-12") is None
    for bad in ("2024-13", "2024-00", "2024-1", "202401", "2024-01-01"):
        assert validate_value(MONTH, bad) == "not a valid month (YYYY-MM)"


def test_allowed():
    assert validate_value(ALLOWED, "actual") is None
    assert validate_value(ALLOWED, "Actual") == "not an allowed value (actual, estimated)"


def test_pattern():
    assert validate_value(PATTERN, "M0123456789") is None
    assert validate_value(PATTERN, "M012345678") == "does not match pattern ^M[0-9]{10}$"
    assert validate_value(PATTERN, "m0123456789") is not None
    assert validate_value(PATTERN_GENERIC, "AB-12") is None


def test_resident_id_check_digit():
    assert validate_value(RESIDENT, GOOD_RID) is None
    assert validate_value(RESIDENT, _bad_check_digit(GOOD_RID, "0123456789X")) == \
        validation.CHECK_REASONS["resident_id"]
    assert validate_value(RESIDENT, GOOD_RID[:-1] + "x") is not None  # lowercase x refused


def test_uscc_check_digit():
    assert validate_value(USCC, GOOD_USCC) is None
    assert validate_value(USCC, _bad_check_digit(GOOD_USCC, validation.USCC_CHARSET)) == \
        validation.CHECK_REASONS["uscc"]
    assert validate_value(EITHER, GOOD_USCC) is None and validate_value(EITHER, GOOD_RID) is None


def test_phone():
    assert validate_value(PHONE, "13812345678") is None
    for bad in ("12812345678", "1381234567", "138123456789", "+8613812345678", "010-12345678"):
        assert validate_value(PHONE, bad) == validation.CHECK_REASONS["phone_cn"]


# -- masking -----------------------------------------------------------------------------------
def test_masking():
    assert mask_value(RESIDENT, "11010519491231002X") == "110105********002X"
    assert mask_value(PHONE, "13812345678") == "138****5678"
    assert mask_value(ColumnSpec("customer_name", personal=True), "张三") == "张*"
    assert mask_value(ColumnSpec("email", personal=True), "wang@example.cn") == "w***@example.cn"
    assert mask_value(ColumnSpec("meter_id"), "M0123456789") == "M0123456789"


# -- the vectorised checks (fast path) agree with validate_value (the one definition) -----------
TRICKY = {
    TEXT_REQ: ["", None, "x", " ", '"'],
    INTEGER: ["0", "-1", "1.0", "+1", "--1", "-", "1-", "1 ", "١٢", "99999999999999999999", "-0"],
    NUMERIC: ["0", "0.00", "-0.00", "-0.01", "10", "10.00", "10.001", "1.", ".5", "-.5", "1.2.3",
              "1,5", "1e2", "NaN", "Infinity", "-", "5-", " 5", "５", "9.999999999999999999",
              "10.000000000000000001", "0000000000000000000000001", "-0.0000000000000000001",
              "1" * 40, "5\n", "5\r"],
    DATE: ["2024-02-29", "2023-02-29", "2000-02-29", "1900-02-29", "2100-02-29", "2024-04-30",
           "2024-04-31", "2024-12-31", "2024-13-01", "2024-00-01", "2024-01-00", "2024-01-32",
           "0000-01-01", "1989-12-31", "1990-01-01", "2100-12-31", "2101-01-01", "2024-1-01",
           "2-24-01-01", "2024--1-01", "2024-01-0a", "2024/01/01", "2024-01-01 ", "２０２４-01-01",
           "2024-06-31", "2024-09-30", "1996-02-29", "2024-02-30", "2024-01-01\n", "９９９９-01-01"],
    TIMESTAMP: ["2024-02-29 23:59:59", "2023-02-29 10:00:00", "2024-01-01 24:00:00",
                "2024-01-01 23:60:00", "2024-01-01 23:59:60", "2024-01-01T00:00:00",
                "2024-01-01  0:00:00", "2024-01-01 0 :00:00", "2024-01-01 00:00:0:",
                "2024-01-01 00-00-00", "2024-01-01", "0000-01-01 00:00:00", "2024-01-01 19:59:59",
                "2024-01-01 20:00:00", "2024-01-01 00:00:00 "],
    MONTH: ["2024-01", "2024-12", "2024-13", "2024-00", "2024-1", "2024-001", "2-24-01", "2024-0a",
            "0000-01", "2024-10", "2024/10"],
    ALLOWED: ["actual", "estimated", "ACTUAL", "actual ", "", "actua", "estimatedx"],
    PATTERN: ["M0123456789", "M012345678", "M01234567890", "N0123456789", "M01234567a9",
              "M-123456789", "M０123456789", "m0123456789", 'M"0123456789"', "M012345678/"],
    PATTERN_GENERIC: ["AB-12", "AB-", "ab-12", "ABC-1", "AB-1\n", "ÄB-1"],
    RESIDENT: [GOOD_RID, _bad_check_digit(GOOD_RID, "0123456789X"), GOOD_RID[:-1] + "x",
               "11010519491231002X", "110105194912310021", "110105194902300028",
               "010105198001011234", "11010517800101123X", GOOD_RID[:17], GOOD_RID + "1",
               "110105200002290011", "110105190002290019", "11010521000101001X"],
    USCC: [GOOD_USCC, _bad_check_digit(GOOD_USCC, validation.USCC_CHARSET), GOOD_USCC.lower(),
           "91110105MA01ABCDIO", "9111010XMA01ABCD1" + "0", GOOD_USCC[:17], "9I110105MA01ABCD1X"],
    EITHER: [GOOD_RID, GOOD_USCC, "123", "", GOOD_RID[:-1] + "0"],
    PHONE: ["13812345678", "12812345678", "1381234567", "138123456789", "1381234567a", "19912345678",
            "10012345678", "2381234567８"],
    ColumnSpec("c", pattern=r"^\d+$"): ["12", "١٢", "", "1a"],  # Python's \d is Unicode: Python decides
    ColumnSpec("c", type="date", min="1990-1-1"): ["1990-01-01", "1990-1-1"],  # odd bound: Python decides
}


def _agree(column: ColumnSpec, values: list[str | None]) -> None:
    python = [validate_value(column, v) for v in values]
    mask = av.valid_mask(column, av.strings(values))
    assert [bool(m) for m in mask] == [p is None for p in python], \
        [(v, bool(m), p) for v, m, p in zip(values, mask, python, strict=True) if bool(m) != (p is None)]
    assert av.reasons(column, values) == python


def test_vectorised_checks_agree_on_tricky_values():
    for column, values in TRICKY.items():
        _agree(column, values)
        _agree(column, values[::-1] * 3)  # mixed widths and repeats in one array


SEEDS = ["", "0", "-1", "1.50", "-0.00", "100000000", "99999999.99", "2024-02-29", "2023-02-28",
         "1990-01-01", "2100-12-31", "2024-01", "2024-02-29 12:00:00", "2024-01-05 23:59:59",
         "C000000001", "M0123456789", "E00000001", "B000000000001", "P000000000001", "110105",
         "actual", "residential", "A", "0.22kV", GOOD_RID, GOOD_USCC, "11010519491231002X",
         "13812345678", "x,y", "1000000000000", "0.5", "1.000001"]


def test_vectorised_checks_agree_on_every_contract_column():
    """Every rule of the real contract: valid-looking and broken values give the same reasons."""
    for table in load_contract().tables:
        for column in table.columns:
            _agree(column, SEEDS)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.text(alphabet='0123456789-:. XM"\n', max_size=20), min_size=1, max_size=40))
def test_vectorised_checks_agree_on_random_strings(values):
    for column in (INTEGER, NUMERIC, DATE, TIMESTAMP, MONTH, PATTERN, RESIDENT, USCC, EITHER, PHONE):
        _agree(column, values)


EDIT = st.tuples(st.integers(0, 30), st.sampled_from("0123456789-:. XAa9\"١"), st.sampled_from("sid"))


def _mutate(seed: str, edits: list[tuple[int, str, str]]) -> str:
    chars = list(seed)
    for position, char, kind in edits:
        position = min(position, len(chars))
        if kind == "i" or not chars:
            chars.insert(position, char)
        elif kind == "s":
            chars[min(position, len(chars) - 1)] = char
        else:
            del chars[min(position, len(chars) - 1)]
    return "".join(chars)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(SEEDS), st.lists(EDIT, max_size=2)), min_size=1, max_size=30))
def test_vectorised_checks_agree_on_near_valid_values(mutations):
    """Valid values with a few edits: the checks must find exactly the ones that broke."""
    values = [_mutate(seed, edits) for seed, edits in mutations]
    for table in load_contract().tables:
        for column in table.columns:
            _agree(column, values)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.decimals(allow_nan=False, allow_infinity=False, min_value=-(10**20), max_value=10**20),
                min_size=1, max_size=30),
       st.lists(st.sampled_from(["", "-", "00", "1.", ".1", "1e5"]), max_size=3))
def test_numbers_are_exact(decimals, junk):
    values = [format(d, "f") for d in decimals] + junk
    array = av.strings(values)
    parsed = av.numbers(array, *av._parts(array))
    for value, ok, exact, scaled in zip(values, parsed.ok, parsed.exact, parsed.scaled, strict=True):
        assert bool(ok) == (validation.parse_decimal(value) is not None), value
        if exact:
            assert Decimal(int(scaled)).scaleb(-parsed.scale) == Decimal(value), value


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(alphabet="0123456789.-", max_size=8), min_size=1, max_size=30))
def test_number_format_on_digits_dots_and_minus_signs(values):
    """Blocks of only these characters take the float-parsing shortcut: same answers as the regex."""
    for fraction, column in ((True, NUMERIC), (False, INTEGER)):
        array = av.strings(values)
        parsed = av.numbers(array, *av._parts(array), fraction=fraction)
        regex = validation._NUMERIC if fraction else validation._INTEGER
        assert [bool(ok) for ok in parsed.ok] == [bool(regex.search(v)) for v in values]
        _agree(column, values)


def test_totals_are_exact_whatever_the_digits(tmp_path):
    values = ["1.10", "-0.05", "12345678901234567.89", "0.0000000000000001", "7", "abc", ""]
    table = load_contract().table("billing", "bills")
    path = tmp_path / "bills.csv"
    header = list(table.column_names)
    lines = [",".join(header)]
    for i, amount in enumerate(values):
        lines.append(f"B{i:012d},C000000001,2024-01,2024-02-03,2024-02-28,1.00,{amount},R1,issued")
    path.write_text("\n".join(lines) + "\n")
    outcome = av.FileCheck(table, header, keep_lines=100).run(path, "utf-8")
    total = outcome.totals["amount"]
    assert not total.complete  # "abc" and "" cannot be read
    assert total.value == sum(Decimal(v) for v in values[:5])
    assert sorted(outcome.rejects) == [(4, "amount", "above maximum 100000000"),
                                       (7, "amount", "not a number"),
                                       (8, "amount", "required value is empty")]


def _csv_field(value: str) -> str:
    return '"' + value.replace('"', '""') + '"' if any(c in value for c in ',"') else value


def _low_cardinality_file(path, table, bad: dict[str, list[str]], rows: int, seed: int,
                          quoted: float) -> list[str]:
    """A file of ``table`` whose columns repeat few values (as readings' do), with bad values,
    quoted values, values too long to be exact and repeated keys mixed in."""
    import random
    rnd = random.Random(seed)
    good = {name: [v for v in SEEDS + [str(i) for i in range(20)]
                   if validate_value(table.column(name), v) is None][:12]
            for name in table.column_names}
    header = list(table.column_names)
    lines = [",".join(header)]
    for _ in range(rows):
        values = []
        for name in header:
            draw = rnd.random()
            if draw < 0.02 and bad.get(name):
                value = rnd.choice(bad[name])
            elif draw < 0.02 + quoted:
                value = '"' + rnd.choice(good[name] or ["x"]) + '"'  # quoted whole: same value
                values.append(value)
                continue
            else:
                value = rnd.choice(good[name] or ["x"])
            values.append(_csv_field(value))
        lines.append(",".join(values))
    lines.append(lines[5])  # a repeated key
    path.write_text("\n".join(lines) + "\n")
    return header


@pytest.mark.parametrize(("qualified", "clean"), [("metering.readings", False), ("billing.bills", False),
                                                 ("metering.readings", True)])
def test_dictionary_encoded_reading_finds_exactly_what_plain_reading_finds(tmp_path, monkeypatch, qualified,
                                                                          clean):
    """Low-cardinality columns are read dictionary-encoded and checked once per distinct value
    (DICTIONARY_SHARE): bad fields, quoted lines, totals, key hashes and duplicate candidates must be
    those of the plain reading, over many blocks, whatever the columns chosen."""
    table = load_contract().table(*qualified.split("."))
    no_break = {kind: [v for v in values if v is not None and "\n" not in v and "\r" not in v]
                for kind, values in TRICKY.items()}
    bad = {}
    for column in table.columns:
        kind = {"date": DATE, "numeric": NUMERIC, "month": MONTH, "timestamp": TIMESTAMP}.get(column.type)
        pool = no_break.get(kind, []) + no_break[PATTERN] + no_break[ALLOWED] + ["", 'M"0123"4', "1" * 40]
        bad[column.name] = [v for v in pool if validate_value(column, v) is not None] + ["12345678901.123456"]
    path = tmp_path / "file.csv"
    header = _low_cardinality_file(path, table, {} if clean else bad, rows=4000, seed=len(qualified),
                                   quoted=0.0 if clean else 0.005)
    monkeypatch.setattr(av, "BLOCK_SIZE", 16 << 10)  # about ten blocks
    monkeypatch.setattr(av, "DICTIONARY_MIN_ROWS", 10)

    def check(share: float):
        monkeypatch.setattr(av, "DICTIONARY_SHARE", share)
        file_check = av.FileCheck(table, header, keep_lines=10**6)
        return file_check._dictionary_columns(path, "utf-8"), file_check.run(path, "utf-8")

    plain_columns, plain = check(0.0)
    encoded_columns, encoded = check(1.0)
    assert plain_columns == [] and set(encoded_columns) == {c.name for c in table.columns if
                                                           validation.has_rules(c) or c.name in table.key}
    assert plain.rows == encoded.rows == 4001
    assert bool(plain.rejects) != clean and sorted(plain.rejects) == sorted(encoded.rejects)
    assert plain.bad_lines == encoded.bad_lines and plain.kept_all and encoded.kept_all
    assert bool(plain.quoted_lines) != clean and plain.quoted_lines == encoded.quoted_lines
    def totals(outcome):  # exact parts (Decimal sums round to 28 digits)
        return {c: (Decimal(t.scaled).scaleb(-t.scale), t.extra, t.complete) for c, t in outcome.totals.items()}

    assert totals(plain) == totals(encoded) and all(t.complete for t in encoded.totals.values()) == clean
    assert list(plain.key_hashes()) == list(encoded.key_hashes())
    assert 4001 in plain.duplicate_candidates() and \
        list(plain.duplicate_candidates()) == list(encoded.duplicate_candidates())
    lines = np.arange(2, 4003)
    assert list(plain.is_bad(lines)) == list(encoded.is_bad(lines))


def test_key_hash_depends_on_the_values_only():
    a = av.strings(["M0000000001", "M0000000002", "", "M0000000001", "x" * 30, "x" * 30])
    b = av.strings(["2020-01-01", "2020-01-01", "2020-01-01", "2020-01-01", "y", "y"])
    hashes = av.key_hash([av._parts(a), av._parts(b)])
    assert hashes[0] == hashes[3] and hashes[4] == hashes[5] and hashes[2] == 0
    assert len({int(h) for h in hashes[[0, 1, 4]]}) == 3
    again = av.key_hash_of([["M0000000001", "2020-01-01"], ["x" * 30, "y"]], 2)
    assert list(again) == [hashes[0], hashes[4]]


# -- Arrow reads a file the way COPY does (checked against the real server) ---------------------
@pytest.fixture(scope="module")
def scratch_database(session_warehouse):
    name = f"t_csv_{uuid.uuid4().hex[:8]}"
    admin = session_warehouse.with_dbname("postgres")
    with psycopg.connect(admin.url, autocommit=True) as pg:
        pg.execute(f'create database "{name}"')
    with psycopg.connect(session_warehouse.with_dbname(name).url, autocommit=True) as pg:
        yield pg
    with psycopg.connect(admin.url, autocommit=True) as pg:
        pg.execute(f'drop database if exists "{name}" with (force)')


def _copy_and_arrow_agree(pg, lines: list[str]) -> bool:
    """The fast path's premise: when COPY (fed the numbered lines) and Arrow (reading the file)
    find the same number of lines and no value holds a line break, a line whose Arrow values hold no
    double quote has exactly the values COPY stored, at the same line number. False if COPY or
    Arrow refuses the lines (the line-by-line path takes them)."""
    body = ("a,b\n" + "\n".join(lines) + "\n").encode()
    pg.execute("create temp table if not exists t (n bigint, a text, b text)")
    pg.execute("truncate t")
    try:
        with pg.cursor() as cur, cur.copy("copy t (n, a, b) from stdin with (format csv)") as copy:
            copy.write(bytes(_prefix_lines(body[body.index(b"\n") + 1:], 2)))
    except psycopg.errors.DataError:
        return False
    stored = pg.execute("select n, coalesce(a, ''), coalesce(b, '') from t order by n").fetchall()
    read, parse, convert = av.csv_options(["a", "b"], "utf-8")
    try:
        table = pacsv.read_csv(io.BytesIO(body), read_options=read, parse_options=parse,
                               convert_options=convert)
    except pa.ArrowInvalid:
        return False
    arrow = list(zip(table["a"].to_pylist(), table["b"].to_pylist(), strict=True))
    if len(arrow) != len(stored) or any("\n" in v or "\r" in v for row in arrow for v in row):
        return False  # Divergence
    for i, (values, row) in enumerate(zip(arrow, stored, strict=True)):
        assert row[0] == i + 2
        if not any('"' in v for v in values):
            assert tuple(row[1:]) == values, (lines, i, row, values)
    return True


def test_arrow_and_copy_read_quote_free_values_alike(scratch_database):
    cases = [['a"1"a,1', '"a"1,1', '"a""1",1', '1,"a,1"', 'a,b'],  # COPY stores a1a, a1, a"1, a,1
             ['"",', ',""', '"a"",b",1', 'x"y",1'],
             ['a,"1', '",1', 'b,c']]  # a quoted line break: COPY and Arrow disagree on the lines
    assert [_copy_and_arrow_agree(scratch_database, lines) for lines in cases] == [True, True, False]


FIELD = st.text(alphabet='a"1 ', max_size=4)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(FIELD, FIELD), min_size=1, max_size=10))
def test_arrow_and_copy_read_quote_free_values_alike_random(scratch_database, fields):
    _copy_and_arrow_agree(scratch_database, [f"{a},{b}" for a, b in fields])


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 40), min_size=1, max_size=6),
    pool=st.integers(1, 30),
    seed=st.integers(0, 2**32 - 1),
)
def test_duplicate_candidates_bucket_by_bucket_equal_the_whole_sort(sizes, pool, seed):
    """ADR 0102: the candidate search compares hashes one bucket (top bits) at a time, over the
    blocks as validated, instead of sorting one concatenated copy. It must find exactly the lines
    whose non-zero hash another line shares, in any block and bucket."""
    rng = np.random.default_rng(seed)
    values = rng.integers(0, 2**64 - 1, size=pool, dtype=np.uint64, endpoint=True)
    values[0] = 0  # "no key to compare" (an empty key or a quoted line before its recheck)
    blocks = [values[rng.integers(0, pool, size=n)] for n in sizes]
    outcome = av.FileOutcome(header=["k"], key=("k",), hashes=[b.copy() for b in blocks])
    every = np.concatenate(blocks)
    shared = [h != 0 and np.count_nonzero(every == h) > 1 for h in every]
    assert outcome.duplicate_candidates().tolist() == (np.flatnonzero(shared) + 2).tolist()


def test_recheck_sets_a_quoted_lines_key_hash_in_its_own_block():
    """A quoted line's key hash is set from what COPY stored (FileOutcome.recheck) in the block
    that holds the line; a duplicate of another block's key is then found."""
    table = load_contract().table("metering", "readings")
    header = [c.name for c in table.columns]
    first = av.key_hash_of([["M00000001", "2024-01-05"]], 2)
    blocks = [np.array([first[0], 11, 12], dtype=np.uint64), np.array([21, 0, 23], dtype=np.uint64)]
    outcome = av.FileOutcome(header=header, key=table.key, hashes=blocks)
    assert outcome.duplicate_candidates().size == 0
    # Line 6 is the second row of the second block (lines start at 2), its hash still 0 (quoted).
    outcome.recheck(table, [(6, "M00000001", "2024-01-05", "1.5", "actual")])
    assert outcome.key_hashes().tolist() == [first[0], 11, 12, 21, first[0], 23]
    assert outcome.duplicate_candidates().tolist() == [2, 6]
