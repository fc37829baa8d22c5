"""Tests of the utility source simulator (``gridcredit.ingestion.simulator``)."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import re
from decimal import Decimal
from pathlib import Path

import pytest

from gridcredit.ingestion.contract import load_contract
from gridcredit.ingestion.identifiers import (
    is_valid_phone_cn,
    is_valid_resident_id,
    is_valid_resident_id_or_uscc,
    is_valid_uscc,
    org_code_check_char,
    resident_id_check_char,
    uscc_check_char,
)
from gridcredit.ingestion.simulator import TRUTH_FILES, generate
from gridcredit.ingestion.simulator.engine import control_parents

CONTRACT = load_contract()
SPECS = {s.name: s for s in CONTRACT.tables}
N, MONTHS, SEED = 200, 6, 7
FROM_MONTH = "2023-04"

# the column that dates each row of an event table (used to check increments and causality)
DATE_COLUMN = {
    "customer_changes": "effective_date", "payments": "paid_at",
    "collection_events": "event_date", "deposits": "txn_date", "prepaid_balances": "balance_date",
    "readings": "reading_date", "meter_events": "event_at", "inspections": "inspection_date",
    "legal_events": "event_date", "industry_activity": "activity_month",
}


# ---------------------------------------------------------------- helpers
def read_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def read_table(out: Path, table: str) -> list[dict[str, str]]:
    header, rows = read_rows(out / SPECS[table].file)
    return [dict(zip(header, r, strict=True)) for r in rows]


def keyed(out: Path, table: str) -> dict[tuple[str, ...], dict[str, str]]:
    key = SPECS[table].key
    return {tuple(r[c] for c in key): r for r in read_table(out, table)}


_NUM = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")
_INT = re.compile(r"^-?[0-9]+$")
_CHECKS = {
    "resident_id": is_valid_resident_id,
    "uscc": is_valid_uscc,
    "resident_id_or_uscc": is_valid_resident_id_or_uscc,
    "phone_cn": is_valid_phone_cn,
}


def _parse_date(v: str, fmt: str) -> dt.datetime | None:
    try:
        return dt.datetime.strptime(v, fmt)
    except ValueError:
        return None


def value_errors(table: str, col: str, v: str) -> list[str]:
    """Problems of one value against the contract's column rules."""
    rule = SPECS[table].column(col)
    if v == "":
        return ["required"] if rule.required else []
    errs = []
    typ = rule.type
    if typ == "integer" and not _INT.match(v):
        errs.append("integer")
    if typ == "numeric" and not _NUM.match(v):
        errs.append("numeric")
    if typ == "date" and (len(v) != 10 or _parse_date(v, "%Y-%m-%d") is None):
        errs.append("date")
    if typ == "timestamp" and (len(v) != 19 or _parse_date(v, "%Y-%m-%d %H:%M:%S") is None):
        errs.append("timestamp")
    if typ == "month" and (len(v) != 7 or _parse_date(v, "%Y-%m") is None):
        errs.append("month")
    if rule.allowed is not None and v not in rule.allowed:
        errs.append("allowed")
    if rule.pattern is not None and not re.fullmatch(rule.pattern, v):
        errs.append("pattern")
    for bound, op in (("min", lambda a, b: a < b), ("max", lambda a, b: a > b)):
        lim = getattr(rule, bound)
        if lim is not None and not errs:
            if typ in ("numeric", "integer") and op(Decimal(v), Decimal(str(lim))):
                errs.append(bound)
            if typ == "date" and op(v, str(lim)):
                errs.append(bound)
    if rule.check is not None and not _CHECKS[rule.check](v):
        errs.append(rule.check)
    return errs


def check_extract(out: Path) -> dict[str, int]:
    """Assert every file follows the contract; return rows per table."""
    counts = {}
    for table, spec in SPECS.items():
        raw = (out / spec.file).read_bytes()
        assert b"\r" not in raw, table
        header, rows = read_rows(out / spec.file)
        assert tuple(header) == spec.column_names, table
        problems = []
        for i, row in enumerate(rows):
            assert len(row) == len(header), (table, i, row)
            for col, v in zip(header, row, strict=True):
                for e in value_errors(table, col, v):
                    problems.append((table, i + 2, col, v, e))
        assert not problems, problems[:10]
        keys = [tuple(r[header.index(c)] for c in spec.key) for r in rows]
        assert len(keys) == len(set(keys)), f"{table}: duplicate keys"
        counts[table] = len(rows)
    return counts


# ---------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def full(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("full")
    return out, generate(out, N, MONTHS, SEED)


@pytest.fixture(scope="module")
def full7(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("full7")
    generate(out, N, MONTHS + 1, SEED)
    return out


@pytest.fixture(scope="module")
def before(tmp_path_factory) -> Path:
    """Full extract ending the month before FROM_MONTH."""
    out = tmp_path_factory.mktemp("before")
    generate(out, N, 3, SEED)
    return out


@pytest.fixture(scope="module")
def increment(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("incr")
    return out, generate(out, N, MONTHS, SEED, from_month=FROM_MONTH)


# ---------------------------------------------------------------- identifiers
def test_resident_id_known_examples():
    assert is_valid_resident_id("11010519491231002X")
    assert resident_id_check_char("11010519491231002") == "X"
    assert not is_valid_resident_id("110105194912310021")  # wrong check char
    assert not is_valid_resident_id("11010519491231002x")  # lowercase x
    assert not is_valid_resident_id("110105194902300027")  # 30 February
    assert not is_valid_resident_id("11010519491231002")  # too short
    assert not is_valid_resident_id(None)
    assert not is_valid_resident_id("11010519491231002X\n")


def test_uscc_known_examples():
    assert is_valid_uscc("91350100M000100Y43")
    assert uscc_check_char("91350100M000100Y4") == "3"
    assert org_code_check_char("M000100Y") == "4"
    assert not is_valid_uscc("91350100M000100Y44")
    assert not is_valid_uscc("91350100M000100I43")  # I is not in the charset
    assert not is_valid_uscc("91350100M000100Y43\n")
    assert is_valid_resident_id_or_uscc("91350100M000100Y43")
    assert is_valid_resident_id_or_uscc("11010519491231002X")
    with pytest.raises(ValueError):
        uscc_check_char("91350100M000100O4")


def test_phone_cn():
    assert is_valid_phone_cn("13912345678")
    assert not is_valid_phone_cn("12912345678")
    assert not is_valid_phone_cn("1391234567")
    assert not is_valid_phone_cn("+8613912345678")
    assert not is_valid_phone_cn("13912345678\n")


# ---------------------------------------------------------------- extract structure
def test_headers_match_contract(full):
    out, _ = full
    for spec in SPECS.values():
        first = (out / spec.file).read_text(encoding="utf-8").split("\n", 1)[0]
        assert first == ",".join(spec.column_names)


def test_every_value_passes_the_contract(full, increment):
    counts = check_extract(full[0])
    check_extract(increment[0])
    # the small extract still exercises every table that should have rows
    for table in ("customers", "bills", "payments", "readings", "meter_events", "enterprises",
                  "collection_events", "prepaid_balances", "industry_activity", "meters"):
        assert counts[table] > 0, table


def test_no_row_is_dated_after_the_last_month(full, full7):
    for out, last in ((full[0], "2023-06"), (full7, "2023-07")):
        for table, col in DATE_COLUMN.items():
            assert all(r[col][:7] <= last for r in read_table(out, table)), table
        assert all(r["issue_date"][:7] <= last for r in read_table(out, "bills"))
        assert all(r["open_date"][:7] <= last for r in read_table(out, "customers"))


def test_manifest_matches_files(full):
    out, manifest = full
    on_disk = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert on_disk == manifest
    assert manifest["schema_version"] == CONTRACT.current_schema_version
    assert manifest["kind"] == "full"
    assert (manifest["first_month"], manifest["last_month"]) == ("2023-01", "2023-06")
    assert set(manifest["files"]) == {s.file for s in SPECS.values()}
    for path, entry in manifest["files"].items():
        data = (out / path).read_bytes()
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert entry["bytes"] == len(data)
        spec = SPECS[entry["table"]]
        assert entry["system"] == spec.system
        header, rows = read_rows(out / path)
        assert entry["rows"] == len(rows)
        if spec.totals:
            for col in spec.totals:
                i = header.index(col)
                total = sum((Decimal(r[i]) for r in rows), Decimal("0.00"))
                assert entry["totals"][col] == f"{total:.2f}"
        else:
            assert "totals" not in entry


def test_manifest_is_deterministic_json(full):
    out, manifest = full
    text = (out / "manifest.json").read_text(encoding="utf-8")
    assert text == json.dumps(manifest, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def test_truth_present_and_not_in_manifest(full):
    out, manifest = full
    for name, (cols, _) in TRUTH_FILES.items():
        header, _rows = read_rows(out / "truth" / f"{name}.csv")
        assert tuple(header) == cols
    assert not any(p.startswith("truth") for p in manifest["files"])
    header, rows = read_rows(out / "truth" / "customer_months.csv")
    assert header == ["customer_id", "month", "financial_health", "is_thief", "theft_active"]
    assert {r[1] for r in rows} == {f"2023-0{m}" for m in range(1, 7)}


def test_month_totals_split_the_file_totals_by_the_contracts_month(full):
    """Each totals table's manifest entry splits rows and totals by month of its totals_month
    column: the months add up to the file, and each month matches the file's own lines."""
    out, manifest = full
    for spec in SPECS.values():
        entry = manifest["files"][spec.file]
        if not spec.totals:
            assert "month_totals" not in entry
            continue
        assert spec.totals_month and entry["month_totals"]["column"] == spec.totals_month
        months = entry["month_totals"]["months"]
        assert sum(m["rows"] for m in months.values()) == entry["rows"]
        expected: dict[str, list] = {}
        with open(out / spec.file, newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                figures = expected.setdefault(row[spec.totals_month][:7], [0, Decimal(0)])
                figures[0] += 1
                figures[1] += Decimal(row[spec.totals[0]])
        assert {m: [v["rows"], Decimal(v[spec.totals[0]])] for m, v in months.items()} == expected
        assert sum(Decimal(v[spec.totals[0]]) for v in months.values()) == Decimal(entry["totals"][spec.totals[0]])


def test_zero_row_tables_are_header_only(tmp_path):
    # one month: bills of a month are issued the next month, so there are none yet
    manifest = generate(tmp_path, 50, 1, SEED)
    entry = manifest["files"]["billing/bills.csv"]
    header = (",".join(SPECS["bills"].column_names) + "\n").encode()
    assert (tmp_path / "billing/bills.csv").read_bytes() == header
    assert entry["rows"] == 0
    assert entry["bytes"] == len(header)
    assert entry["sha256"] == hashlib.sha256(header).hexdigest()
    assert entry["totals"] == {"amount": "0.00"}
    check_extract(tmp_path)


# ---------------------------------------------------------------- determinism and causality
def test_same_arguments_give_identical_bytes(full, tmp_path):
    out, _ = full
    generate(tmp_path, N, MONTHS, SEED)
    files = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    for rel in files:
        assert (out / rel).read_bytes() == (tmp_path / rel).read_bytes(), rel


def test_other_seed_differs(full, tmp_path):
    out, manifest = full
    other = generate(tmp_path, N, MONTHS, SEED + 1)
    assert other["files"]["metering/readings.csv"]["sha256"] != \
        manifest["files"]["metering/readings.csv"]["sha256"]


def test_more_months_do_not_change_history(full, full7):
    out6, _ = full
    last6 = "2023-06-31"
    for table, col in DATE_COLUMN.items():
        a = [r for r in read_table(out6, table) if r[col][:10] <= last6]
        b = [r for r in read_table(full7, table) if r[col][:10] <= last6]
        assert a == b, table
    # bills issued within the shared months: same bills, same amounts
    b6, b7 = keyed(out6, "bills"), keyed(full7, "bills")
    written_off_7 = {r["bill_id"] for r in
                     csv.DictReader(open(full7 / "truth/bill_status_changes.csv", encoding="utf-8"))
                     if r["change_month"] == "2023-07"}
    shared = {k: v for k, v in b7.items() if v["issue_date"] <= last6}
    assert set(shared) == set(b6)
    for k, row in b6.items():
        other = dict(shared[k])
        if k[0] in written_off_7:
            other["bill_status"] = row["bill_status"]
        assert other == row
    # customers that exist in both: same identity and opening
    c6, c7 = keyed(out6, "customers"), keyed(full7, "customers")
    assert set(c6) <= set(c7)
    for k, row in c6.items():
        for col in ("customer_name", "id_number", "phone", "address", "email", "open_date"):
            assert c7[k][col] == row[col]
    t6 = read_rows(out6 / "truth/customer_months.csv")[1]
    t7 = [r for r in read_rows(full7 / "truth/customer_months.csv")[1] if r[1] <= "2023-06"]
    assert t6 == t7


# ---------------------------------------------------------------- increments
def test_increment_manifest(increment):
    _, manifest = increment
    assert manifest["kind"] == "increment"
    assert manifest["first_month"] == FROM_MONTH
    assert manifest["last_month"] == "2023-06"


def test_increment_rows_are_dated_from_from_month(increment, full):
    out, _ = increment
    for table, col in DATE_COLUMN.items():
        assert all(r[col] >= FROM_MONTH for r in read_table(out, table)), table
    status_changed = {r["bill_id"] for r in csv.DictReader(
        open(full[0] / "truth/bill_status_changes.csv", encoding="utf-8"))
        if r["change_month"] >= FROM_MONTH}
    for r in read_table(out, "bills"):
        assert r["issue_date"] >= FROM_MONTH or r["bill_id"] in status_changed
    for r in read_table(out, "meters"):
        assert r["install_date"] >= FROM_MONTH or r["remove_date"] >= FROM_MONTH


def test_increment_rows_equal_the_full_run(increment, full):
    out, _ = increment
    for table in SPECS:
        inc, whole = keyed(out, table), keyed(full[0], table)
        for k, row in inc.items():
            assert whole[k] == row, (table, k)


def test_previous_full_plus_increment_rebuilds_the_full_run(before, increment, full):
    """Staging keeps the latest load of each key: full(..2023-03) then increment(2023-04..)
    must give exactly the full extract of 2023-01..2023-06."""
    for table in SPECS:
        rebuilt = keyed(before, table)
        rebuilt.update(keyed(increment[0], table))
        assert rebuilt == keyed(full[0], table), table


# ---------------------------------------------------------------- arguments
@pytest.mark.parametrize(
    ("kwargs", "exc"),
    [
        ({"customers": 0}, ValueError),
        ({"customers": 2.5}, TypeError),
        ({"months": 0}, ValueError),
        ({"seed": -1}, ValueError),
        ({"start_month": "2023-13"}, ValueError),
        ({"start_month": "23-01"}, ValueError),
        ({"from_month": "2022-12"}, ValueError),
        ({"from_month": "2023-07"}, ValueError),
    ],
)
def test_bad_arguments(tmp_path, kwargs, exc):
    args = {"customers": 10, "months": 6, "seed": 1, **kwargs}
    with pytest.raises(exc):
        generate(tmp_path, **args)


def test_progress_is_called(tmp_path):
    calls = []
    generate(tmp_path, 20, 2, 1, progress=lambda msg, rows: calls.append((msg, rows)))
    assert [c[0] for c in calls] == ["2023-01", "2023-02", "done"]
    assert calls[-1][1] >= calls[0][1] > 0


# ---------------------------------------------------------------- control resolution (truth)
def test_control_resolution_patterns():
    # 0 -> 1 60%, 1 -> 2 70%: chain
    # 0 -> 3 30% and 1 -> 3 30%: indirect control by summed stakes (0 controls 1)
    # 4 <-> 5 20% each: cross-holding, no control
    # 6 -> 7 40%: minority, no control
    stakes = {1: {0: 6000}, 2: {1: 7000}, 3: {0: 3000, 1: 3000}, 5: {4: 2000}, 4: {5: 2000},
              7: {6: 4000}}
    parent, ultimate = control_parents(stakes, 8)
    assert list(parent) == [-1, 0, 1, 0, -1, -1, -1, -1]  # 1 alone holds only 30% of 3
    assert list(ultimate) == [0, 0, 0, 0, 4, 5, 6, 7]


def test_increment_from_the_start_month(tmp_path, full):
    manifest = generate(tmp_path, N, MONTHS, SEED, from_month="2023-01")
    assert manifest["kind"] == "increment"
    # everything dated in the simulated months, nothing from before the start
    assert manifest["files"]["metering/readings.csv"] == full[1]["files"]["metering/readings.csv"]
    changed = {r["customer_id"] for r in read_table(tmp_path, "customer_changes")}
    customers = read_table(tmp_path, "customers")
    assert customers
    assert all(r["open_date"] >= "2023-01" or r["close_date"] >= "2023-01"
               or r["customer_id"] in changed for r in customers)
    assert len(customers) < len(read_table(full[0], "customers"))


def test_text_with_comma_or_quote_is_quoted(tmp_path):
    from gridcredit.ingestion.contract import ColumnSpec, TableSpec
    from gridcredit.ingestion.simulator.writer import Centi, TableWriter, Text

    spec = TableSpec("s", "t", "t.csv", (ColumnSpec("name"), ColumnSpec("amount", "numeric")), totals=("amount",))
    w = TableWriter(tmp_path, spec)
    w.write({"name": Text(['a,b', 'say "hi"', None, "plain"]),
             "amount": Centi([1, -250, 0, 123456])})
    entry = w.close()
    text = (tmp_path / "t.csv").read_text(encoding="utf-8")
    assert text == 'name,amount\n"a,b",0.01\n"say ""hi""",-2.50\n,0.00\nplain,1234.56\n'
    assert entry["totals"] == {"amount": "1232.07"}
    with open(tmp_path / "t.csv", encoding="utf-8", newline="") as f:
        assert list(csv.reader(f))[1:3] == [["a,b", "0.01"], ['say "hi"', "-2.50"]]


def test_payment_behaviour_follows_latent_health(tmp_path):
    """Customers in worse financial health get more dunning notices and disconnections."""
    generate(tmp_path, 600, 12, 3)
    health: dict[str, list[float]] = {}
    for r in csv.DictReader(open(tmp_path / "truth/customer_months.csv", encoding="utf-8")):
        health.setdefault(r["customer_id"], []).append(float(r["financial_health"]))
    mean_h = {c: sum(v) / len(v) for c, v in health.items()}
    notices: dict[str, int] = {}
    for r in read_table(tmp_path, "collection_events"):
        notices[r["customer_id"]] = notices.get(r["customer_id"], 0) + 1
    ranked = sorted(mean_h, key=mean_h.get)
    q = len(ranked) // 4
    worst = sum(notices.get(c, 0) for c in ranked[:q]) / q
    best = sum(notices.get(c, 0) for c in ranked[-q:]) / q
    assert worst > 4 * best


def test_dates_before_1970_and_nulls():
    import numpy as np

    from gridcredit.ingestion.simulator.writer import NULL_DAY, Days, Month, format_column

    got = format_column(Days(np.array([-1, -7305, NULL_DAY, 0])), 4).to_pylist()
    assert got == ["1969-12-31", "1950-01-01", None, "1970-01-01"]
    got = format_column(Days(np.array([-1, 19000]), null_negative=True), 2).to_pylist()
    assert got == [None, "2022-01-08"]
    assert format_column(Month(np.array([2023 * 12, -1])), 2).to_pylist() == ["2023-01", None]
