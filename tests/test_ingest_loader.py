"""`gridcredit ingest`: loads, idempotency, increments, re-deliveries, the bad-input matrix."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import psycopg
import pytest
from ingest_helpers import bills, csv_bytes, customers, readings, regions, write_extract
from rich.console import Console

from gridcredit.ingestion.loader import IngestError, ingest_directory


def ingest(directory: Path, conn, **kwargs):
    return ingest_directory(directory, conn, console=Console(width=200, record=True), **kwargs)


def query(conn, sql: str, params=None):
    with psycopg.connect(conn.url) as pg:
        return pg.execute(sql, params).fetchall()


def count(conn, table: str) -> int:
    return query(conn, f"select count(*) from {table}")[0][0]


def basic(directory: Path, **kwargs) -> dict:
    tables = {"billing.supply_regions": regions(), "billing.customers": customers(),
              "billing.bills": bills(), "metering.readings": readings(300)}
    tables.update(kwargs.pop("tables", {}))
    return write_extract(directory, tables, **kwargs)


# -- clean loads -------------------------------------------------------------------------------
def test_clean_load_matches_manifest_and_second_load_changes_nothing(fresh_database, tmp_path):
    manifest = basic(tmp_path / "x")
    summary = ingest(tmp_path / "x", fresh_database)
    assert summary.ok and len(summary.loaded) == 4
    # reference tables first
    assert summary.files[0].file == "billing/supply_regions.csv"
    for rel, entry in manifest["files"].items():
        system, table = entry["system"], entry["table"]
        assert count(fresh_database, f"raw_{system}.{table}") == entry["rows"], rel
    assert query(fresh_database, "select min(_line_number), max(_line_number) from raw_metering.readings") \
        == [(2, 301)]
    ledger = query(fresh_database, "select status, rows_read, rows_loaded, rows_rejected, extract_kind, "
                                   "schema_version, encoding from ops.load_ledger order by load_id")
    assert [r[0] for r in ledger] == ["loaded"] * 4
    assert ledger[0][4:] == ("full", "1.1", "UTF8")
    # the truth folder is never loaded
    assert not query(fresh_database, "select 1 from ops.load_ledger where file_path like '%truth%'")

    before = query(fresh_database, "select count(*), max(load_id) from ops.load_ledger")
    again = ingest(tmp_path / "x", fresh_database)
    assert [f.status for f in again.files] == ["already loaded"] * 4
    assert query(fresh_database, "select count(*), max(load_id) from ops.load_ledger") == before
    assert count(fresh_database, "raw_metering.readings") == 300
    # every partition is attached
    assert not _detached_load_tables(fresh_database)


def _detached_load_tables(conn) -> list:
    return query(conn, """
        select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname like 'raw\\_%%' and c.relname like '%%\\_\\_load\\_%%' and not c.relispartition
          and c.relkind = 'r'""")


def test_increment_appends_and_redelivery_gets_new_load_id(fresh_database, tmp_path):
    basic(tmp_path / "full")
    ingest(tmp_path / "full", fresh_database)
    extra = [dict(b, bill_id=f"B9{i:011d}", billing_period="2024-02") for i, b in enumerate(bills(5))]
    write_extract(tmp_path / "inc", {"billing.bills": extra}, kind="increment")
    summary = ingest(tmp_path / "inc", fresh_database)
    assert summary.files[0].status == "loaded"
    assert count(fresh_database, "raw_billing.bills") == 35
    assert query(fresh_database, "select count(distinct _load_id) from raw_billing.bills") == [(2,)]
    assert query(fresh_database, "select extract_kind from ops.load_ledger order by load_id desc limit 1") \
        == [("increment",)]

    corrected = bills()
    corrected[0]["amount"] = "99.99"
    write_extract(tmp_path / "fix", {"billing.bills": corrected})
    summary = ingest(tmp_path / "fix", fresh_database)
    assert summary.files[0].status == "loaded"
    rows = query(fresh_database, "select _load_id, amount from raw_billing.bills where bill_id = %s "
                                 "order by _load_id", [corrected[0]["bill_id"]])
    assert len(rows) == 2 and rows[1][1] == "99.99" and rows[1][0] > rows[0][0]


def test_optional_column_absent_in_10_file_and_reordered_columns(fresh_database, tmp_path):
    rows = customers()
    header = ["phone", "customer_id", "customer_kind", "customer_name", "id_number", "address",
              "enterprise_id", "region_code", "industry_code", "customer_type", "voltage_level",
              "tariff_code", "settlement_method", "payment_method", "contract_capacity_kva",
              "open_date", "close_date"]
    write_extract(tmp_path / "x", {"billing.customers": rows}, schema_version="1.0",
                  columns={"billing.customers": header})
    summary = ingest(tmp_path / "x", fresh_database)
    assert summary.ok
    got = query(fresh_database, "select customer_id, phone, email from raw_billing.customers "
                                "order by _line_number limit 2")
    assert got == [(rows[0]["customer_id"], None, None), (rows[1]["customer_id"], rows[1]["phone"], None)]


def test_1_1_file_without_email_is_missing_a_column(fresh_database, tmp_path):
    header = [c for c in customers()[0] if c != "email"]
    write_extract(tmp_path / "x", {"billing.customers": customers()}, schema_version="1.1",
                  columns={"billing.customers": header})
    with pytest.raises(IngestError, match="missing required columns: email"):
        ingest(tmp_path / "x", fresh_database)


@pytest.mark.parametrize("variant", ["gb18030", "bom", "crlf"])
def test_encodings_load_identically(fresh_database, tmp_path, variant):
    rows = customers()
    write_extract(tmp_path / "utf8", {"billing.customers": rows})
    options = {"gb18030": {"encoding": "gb18030"}, "bom": {"bom": True}, "crlf": {"newline": "\r\n"}}
    write_extract(tmp_path / "other", {"billing.customers": rows}, encoding=None,
                  csv_options={"billing.customers": options[variant]})
    ingest(tmp_path / "utf8", fresh_database)
    summary = ingest(tmp_path / "other", fresh_database)
    assert summary.ok
    expected = "GB18030" if variant == "gb18030" else "UTF8"
    assert summary.files[0].encoding == expected and summary.files[0].path == "fast"
    loads = query(fresh_database, "select array_agg(distinct _load_id order by _load_id) "
                                  "from raw_billing.customers")[0][0]
    assert len(loads) == 2
    cols = "customer_id, customer_name, address, id_number, phone, email, _line_number"
    first = query(fresh_database, f"select {cols} from raw_billing.customers where _load_id = %s "
                                  "order by _line_number", [loads[0]])
    second = query(fresh_database, f"select {cols} from raw_billing.customers where _load_id = %s "
                                   "order by _line_number", [loads[1]])
    assert first == second and first[0][1].startswith("张")


def test_encoding_option_overrides_manifest(fresh_database, tmp_path):
    write_extract(tmp_path / "x", {"billing.supply_regions": regions()}, encoding="utf-8",
                  csv_options={"billing.supply_regions": {"encoding": "gb18030"}})
    summary = ingest(tmp_path / "x", fresh_database, encoding="gb18030")
    assert summary.ok
    assert query(fresh_database, "select region_name from raw_billing.supply_regions order by 1") \
        == [("朝阳区",), ("浦东新区",)]


# -- bad values: one per rule ------------------------------------------------------------------
BAD_VALUES = [
    ("billing.customers", "customer_name", "", "required value is empty"),
    ("billing.customers", "customer_id", "C12345", "does not match pattern ^C[0-9]{9}$"),
    ("billing.customers", "customer_kind", "alien", "not an allowed value (person, organisation)"),
    ("billing.customers", "contract_capacity_kva", "8,5", "not a number"),
    ("billing.customers", "contract_capacity_kva", "-1", "below minimum 0"),
    ("billing.customers", "contract_capacity_kva", "2000000", "above maximum 1000000"),
    ("billing.customers", "open_date", "2023-02-29", "not a valid date (YYYY-MM-DD)"),
    ("billing.customers", "open_date", "1989-12-31", "before minimum 1990-01-01"),
    ("billing.customers", "id_number", "110105198001011230", "neither a valid resident ID"),
    ("billing.customers", "phone", "1381234567", "invalid mainland mobile phone number"),
    ("billing.bills", "billing_period", "2024-13", "not a valid month (YYYY-MM)"),
    ("billing.bills", "due_date", "2024-02-30", "not a valid date (YYYY-MM-DD)"),
]


@pytest.mark.parametrize(("qualified", "column", "value", "reason"), BAD_VALUES,
                         ids=[f"{c}={v}" for _, c, v, _ in BAD_VALUES])
def test_one_bad_value_is_rejected_and_good_rows_load(fresh_database, tmp_path, qualified, column,
                                                      value, reason):
    rows = customers(200) if qualified == "billing.customers" else bills(200)
    rows[6][column] = value
    if column == "id_number":  # make sure the check digit really is wrong
        from gridcredit.ingestion.identifiers import is_valid_resident_id, is_valid_uscc
        assert not is_valid_resident_id(value) and not is_valid_uscc(value)
    write_extract(tmp_path / "x", {qualified: rows})
    summary = ingest(tmp_path / "x", fresh_database)
    result = summary.files[0]
    assert result.status == "loaded" and result.rows_rejected == 1 and result.rows_loaded == 199
    system, table = qualified.split(".")
    assert count(fresh_database, f"raw_{system}.{table}") == 199
    rejects = query(fresh_database, "select r.file_path, r.line_number, r.field, r.reason, r.raw_line "
                                    "from ops.load_rejects r")
    assert len(rejects) == 1
    file_path, line, field, got_reason, raw_line = rejects[0]
    assert file_path.endswith(f"{table}.csv") and line == 8 and field == column
    assert got_reason.startswith(reason)
    assert raw_line == (tmp_path / "x" / file_path).read_text(encoding="utf-8").splitlines()[7]
    assert not query(fresh_database, f"select 1 from raw_{system}.{table} where _line_number = 8")


def test_manifest_month_totals_are_stored_with_the_refused_part(fresh_database, tmp_path):
    """The manifest's month totals land in ops.manifest_month_totals in the load's transaction,
    with the refused lines' share per month; a refused line whose amount cannot be read is counted
    apart (month null), since nobody can say which month it takes from."""
    from decimal import Decimal

    rows = bills(200)
    for i, row in enumerate(rows):
        row["issue_date"] = "2024-02-03" if i % 2 else "2024-03-03"
    rows[6]["customer_id"] = "X1"  # refused, month (March) and amount readable
    rows[9]["amount"] = "12.5x"  # refused, amount unreadable
    months: dict[str, list] = {}
    for row in rows:
        figures = months.setdefault(row["issue_date"][:7], [0, Decimal(0)])
        figures[0] += 1
        figures[1] += Decimal(row["amount"].rstrip("x"))
    declared = {m: {"rows": n, "amount": str(total)} for m, (n, total) in months.items()}
    write_extract(tmp_path / "x", {"billing.bills": rows}, manifest_patch={
        "billing.bills": {"month_totals": {"column": "issue_date", "months": declared}}})
    summary = ingest(tmp_path / "x", fresh_database)
    assert summary.files[0].status == "loaded" and summary.files[0].rows_rejected == 2
    stored = query(fresh_database, "select month, column_name, manifest_rows, manifest_total, rejected_rows,"
                                   " rejected_total, rejected_unreadable_rows from ops.manifest_month_totals"
                                   " order by month nulls last")
    assert stored == [
        ("2024-02", "amount", 100, months["2024-02"][1], 0, 0, 0),
        ("2024-03", "amount", 100, months["2024-03"][1], 1, Decimal(rows[6]["amount"]), 0),
        (None, "amount", 0, 0, 0, 0, 1),
    ]
    loaded = query(fresh_database, "select left(issue_date, 7), sum(amount::numeric) from raw_billing.bills"
                                   " group by 1 order by 1")
    assert loaded == [("2024-02", months["2024-02"][1] - Decimal("12.5")),
                      ("2024-03", months["2024-03"][1] - Decimal(rows[6]["amount"]))]


def test_timestamp_rule(fresh_database, tmp_path):
    header = ["payment_id", "customer_id", "paid_at", "amount", "channel", "reverses_payment_id"]
    rows = [{"payment_id": f"P{i:012d}", "customer_id": "C000000001",
             "paid_at": "2024-01-05 10:00:00", "amount": "10.00", "channel": "online"}
            for i in range(200)]
    rows[3]["paid_at"] = "2024-01-05 25:00:00"
    write_extract(tmp_path / "x", {"billing.payments": rows}, columns={"billing.payments": header})
    summary = ingest(tmp_path / "x", fresh_database)
    assert summary.files[0].rows_rejected == 1
    assert query(fresh_database, "select line_number, field, reason from ops.load_rejects") == \
        [(5, "paid_at", "not a valid timestamp (YYYY-MM-DD HH:MM:SS)")]


def test_duplicate_key_second_occurrence_rejected(fresh_database, tmp_path):
    rows = readings(300)
    rows[250] = dict(rows[10])
    write_extract(tmp_path / "x", {"metering.readings": rows})
    summary = ingest(tmp_path / "x", fresh_database)
    assert summary.files[0].rows_rejected == 1
    assert query(fresh_database, "select line_number, field, reason from ops.load_rejects") == \
        [(252, None, "duplicate key, first at line 12")]


def test_duplicate_key_found_in_sql_past_the_hash_limit(fresh_database, tmp_path, monkeypatch):
    """A file longer than the client keeps key hashes for: the server compares the keys."""
    from gridcredit.ingestion import arrow_validation

    monkeypatch.setattr(arrow_validation, "MAX_HASHED_LINES", 100)
    rows = readings(300)
    rows[250] = dict(rows[10])
    write_extract(tmp_path / "x", {"metering.readings": rows})
    summary = ingest(tmp_path / "x", fresh_database)
    assert summary.files[0].rows_rejected == 1 and summary.files[0].path == "fast"
    assert query(fresh_database, "select line_number, field, reason from ops.load_rejects") == \
        [(252, None, "duplicate key, first at line 12")]


def test_uscc_and_resident_id_rules(fresh_database, tmp_path):
    from ingest_helpers import uscc

    from gridcredit.ingestion.contract import load_contract

    spec = load_contract().table("registry", "enterprises")
    good = uscc()
    rows = [{"enterprise_id": f"E{i:08d}", "enterprise_name": f"企业{i}", "uscc": good,
             "legal_representative_name": "王五",
             "legal_representative_id_number": customers(1)[0]["id_number"],
             "actual_controller_id_number": None, "registered_capital": "1000000.00",
             "industry_code": "C", "established_date": "2001-05-01"} for i in range(200)]
    rows[0]["uscc"] = good[:-1] + ("0" if good[-1] != "0" else "1")
    rows[1]["legal_representative_id_number"] = "110105198002301234"  # no 30 February
    write_extract(tmp_path / "x", {"registry.enterprises": rows})
    summary = ingest(tmp_path / "x", fresh_database)
    assert summary.files[0].rows_rejected == 2
    got = query(fresh_database, "select line_number, field from ops.load_rejects order by 1")
    assert got == [(2, "uscc"), (3, "legal_representative_id_number")]
    assert spec.column("uscc").check == "uscc"


# -- whole-file failures -----------------------------------------------------------------------
def _fails(directory: Path, conn, *patterns: str) -> str:
    with pytest.raises(IngestError) as caught:
        ingest(directory, conn)
    message = str(caught.value)
    for pattern in patterns:
        assert pattern in message, message
    return message


def test_reject_rate_above_threshold_fails_file_and_masks_personal_values(fresh_database, tmp_path):
    rows = customers(20)
    secret_id = rows[2]["id_number"][:-1] + ("0" if rows[2]["id_number"][-1] != "0" else "1")
    rows[2]["id_number"] = secret_id
    rows[3]["phone"] = "1381234567"
    rows[4]["customer_name"] = ""
    manifest = basic(tmp_path / "x", tables={"billing.customers": rows})
    message = _fails(tmp_path / "x", fresh_database, "billing/customers.csv", "3 of 20 lines rejected",
                     "line 4 id_number='110105********", "line 5 phone='138***4567'")
    assert secret_id not in message and "1381234567" not in message
    # nothing of the failed file is in raw, the other files loaded
    assert count(fresh_database, "raw_billing.customers") == 0
    assert count(fresh_database, "raw_billing.bills") == manifest["files"]["billing/bills.csv"]["rows"]
    ledger = query(fresh_database, "select table_name, status, rows_rejected, message from ops.load_ledger "
                                   "where status = 'failed'")
    assert ledger[0][:3] == ("customers", "failed", 3) and secret_id not in ledger[0][3]
    # the rejects of a failed file are kept for the operator
    assert query(fresh_database, "select count(*) from ops.load_rejects") == [(3,)]
    assert not _detached_load_tables(fresh_database)


def test_reject_rate_setting_from_environment(fresh_database, tmp_path, monkeypatch):
    rows = customers(20)
    rows[4]["customer_name"] = ""
    write_extract(tmp_path / "x", {"billing.customers": rows})
    monkeypatch.setenv("GRIDCREDIT_MAX_REJECT_RATE", "0.10")
    summary = ingest(tmp_path / "x", fresh_database)
    assert summary.files[0].rows_loaded == 19


@pytest.mark.parametrize(("change", "expected"), [
    ("missing", "missing required columns: region_name"),
    ("unexpected", "unexpected columns: colour"),
    ("semicolon", "wrong delimiter: the header is separated by ';'"),
    ("tab", "wrong delimiter: the header is separated by tab"),
])
def test_header_errors(fresh_database, tmp_path, change, expected):
    header = ["region_code", "region_name", "city_code", "city_name"]
    options = {}
    if change == "missing":
        header.remove("region_name")
    elif change == "unexpected":
        header.append("colour")
    elif change == "semicolon":
        options = {"delimiter": ";"}
    else:
        options = {"delimiter": "\t"}
    write_extract(tmp_path / "x", {"billing.supply_regions": regions()},
                  columns={"billing.supply_regions": header},
                  csv_options={"billing.supply_regions": options})
    _fails(tmp_path / "x", fresh_database, "billing/supply_regions.csv", expected)
    assert count(fresh_database, "raw_billing.supply_regions") == 0


@pytest.mark.parametrize(("patch", "expected"), [
    ({"rows": 31}, "body contradicts manifest: 30 data lines, manifest says 31"),
    ({"sha256": "0" * 64}, "file contradicts manifest: sha256"),
    ({"bytes": 12}, "file contradicts manifest"),
    ({"totals": {"amount": "1.00"}}, "body contradicts manifest: sum of amount is"),
    ({"table": "payments"}, "manifest contradiction"),
])
def test_manifest_contradictions(fresh_database, tmp_path, patch, expected):
    write_extract(tmp_path / "x", {"billing.bills": bills()}, manifest_patch={"billing.bills": patch})
    _fails(tmp_path / "x", fresh_database, "billing/bills.csv", expected)
    assert count(fresh_database, "raw_billing.bills") == 0
    assert query(fresh_database, "select status from ops.load_ledger") == [("failed",)]


def test_unsupported_schema_version_and_missing_manifest(fresh_database, tmp_path):
    write_extract(tmp_path / "x", {"billing.bills": bills()}, schema_version="2.0")
    with pytest.raises(IngestError, match="schema_version 2.0 is not supported"):
        ingest(tmp_path / "x", fresh_database)
    (tmp_path / "empty").mkdir()
    with pytest.raises(IngestError, match="manifest.json not found"):
        ingest(tmp_path / "empty", fresh_database)


def test_missing_file_and_truth_entry_refused(fresh_database, tmp_path):
    manifest = write_extract(tmp_path / "x", {"billing.bills": bills(), "billing.supply_regions": regions()})
    (tmp_path / "x" / "billing" / "bills.csv").unlink()
    manifest["files"]["truth/labels.csv"] = {"system": "truth", "table": "labels", "rows": 1,
                                             "sha256": "0", "bytes": 1}
    (tmp_path / "x" / "manifest.json").write_text(json.dumps(manifest))
    message = _fails(tmp_path / "x", fresh_database, "listed in manifest.json but missing",
                     "truth/ is never loaded")
    assert "2 of 3 files failed" in message
    assert count(fresh_database, "raw_billing.supply_regions") == 2


# -- structural problems: the line-by-line path ------------------------------------------------
def test_structural_errors_use_slow_path(fresh_database, tmp_path):
    rows = readings(300)
    data = csv_bytes(["meter_id", "reading_date", "kwh", "quality"], rows).split(b"\n")
    data[5] = data[5] + b",extra"                      # line 6: too many fields
    data[9] = b'"M0000000008,2020-01-01,1.00,actual'  # line 10: unterminated quote
    data[20] = data[20].replace(b"actual", b"act\xff")  # line 21: not UTF-8
    raw = b"\n".join(data)
    write_extract(tmp_path / "x", {"metering.readings": rows}, raw={"metering.readings": raw},
                  manifest_patch={"metering.readings": {"sha256": __import__("hashlib").sha256(raw).hexdigest(),
                                                        "bytes": len(raw)}})
    summary = ingest(tmp_path / "x", fresh_database, encoding="utf-8")
    result = summary.files[0]
    assert result.path == "slow" and result.status == "loaded"
    assert result.rows_read == 300 and result.rows_rejected == 3 and result.rows_loaded == 297
    got = query(fresh_database, "select line_number, reason from ops.load_rejects order by 1")
    assert [g[0] for g in got] == [6, 10, 21]
    assert got[0][1] == "expected 4 fields, found 5"
    assert "quote" in got[1][1] and "UTF8" in got[2][1]
    assert query(fresh_database, "select min(_line_number), max(_line_number), count(*) "
                                 "from raw_metering.readings") == [(2, 301, 297)]


def test_cli_exit_code_and_message(cli_env, fresh_database, tmp_path):
    import subprocess
    import sys

    rows = customers(10)
    rows[1]["id_number"] = "110105198001011230"
    rows[2]["id_number"] = "11010519800101123X"
    write_extract(tmp_path / "x", {"billing.customers": rows})
    env = dict(cli_env, WAREHOUSE_URL=fresh_database.url)
    gridcredit = str(Path(sys.executable).with_name("gridcredit"))
    # A guard against a hung CLI, not a timing: start-up took over 60 s at load ~20 when the CLI
    # imported the ML stack eagerly (ml/scorecard/__init__.py is lazy now: ~1 s idle).
    done = subprocess.run([gridcredit, "ingest", str(tmp_path / "x")], env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 2, done.stderr
    assert "billing/customers.csv" in done.stderr and "110105********1230" in done.stderr
    assert "110105198001011230" not in done.stderr + done.stdout
    shutil.rmtree(tmp_path / "x")


# -- the fast path's own cases -----------------------------------------------------------------
def _readings_bytes(rows) -> list[bytes]:
    return csv_bytes(["meter_id", "reading_date", "kwh", "quality"], rows).split(b"\n")


def _with_raw(directory: Path, qualified: str, table_rows, raw: bytes, **patch) -> dict:
    """An extract whose file holds ``raw`` (the manifest's checksum and size follow it)."""
    import hashlib

    return write_extract(directory, {qualified: table_rows}, raw={qualified: raw},
                         manifest_patch={qualified: {"sha256": hashlib.sha256(raw).hexdigest(),
                                                     "bytes": len(raw), **patch}})


def test_quotes_inside_values_are_judged_on_what_copy_stored(fresh_database, tmp_path):
    """PostgreSQL reads a quote in the middle of a field as the start of a quoted part; Arrow keeps
    it. Lines with such values are checked on the loaded row: values, duplicate keys and totals."""
    rows = readings(300)
    rows[250] = dict(rows[10])          # a duplicate of line 12, hidden by quotes below
    rows[30]["kwh"] = "10.5"            # the manifest's total counts what COPY reads: 10.5
    lines = _readings_bytes(rows)
    lines[251] = lines[251].replace(b"M", b'M"', 1).replace(b",", b'",', 1)  # M"0000000010",...
    lines[31] = lines[31].replace(b"10.5", b'1"0.5"')
    lines[41] = lines[41].replace(b"actual", b'act"ual"').replace(b"estimated", b'est"imated"')
    lines[61] = lines[61].replace(b"M", b'"M', 1).replace(b",", b'",', 1)  # "M...", well formed
    _with_raw(tmp_path / "x", "metering.readings", rows, b"\n".join(lines))
    summary = ingest(tmp_path / "x", fresh_database)
    result = summary.files[0]
    assert result.path == "fast" and result.status == "loaded", result.message
    assert query(fresh_database, "select line_number, field, reason from ops.load_rejects") == \
        [(252, None, "duplicate key, first at line 12")]
    stored = dict(query(fresh_database, "select _line_number, kwh || '|' || quality || '|' || meter_id "
                                        "from raw_metering.readings where _line_number in (32, 42, 62)"))
    assert stored[32].startswith("10.5|") and stored[42].split("|")[1] in ("actual", "estimated")
    assert stored[62].endswith(rows[60]["meter_id"])


def test_quoted_line_break_takes_the_line_by_line_path(fresh_database, tmp_path):
    rows = customers(20)
    rows[3]["address"] = "北京市\n朝阳区"
    write_extract(tmp_path / "x", {"billing.customers": rows},
                  manifest_patch={"billing.customers": {"rows": 21}})  # 21 physical data lines
    summary = ingest(tmp_path / "x", fresh_database, max_reject_rate=0.2)
    result = summary.files[0]
    assert result.path == "slow" and result.status == "loaded"
    assert "line break" in result.message
    assert result.rows_read == 21 and result.rows_rejected == 2
    assert [r[0] for r in query(fresh_database, "select line_number from ops.load_rejects order by 1")] \
        == [5, 6]


def test_fast_and_line_by_line_paths_reject_the_same_lines(fresh_database, tmp_path):
    rows = bills(300)
    bad = {5: ("billing_period", "2024-13"), 9: ("amount", "1e3"), 14: ("issue_date", "2023-02-29"),
           20: ("kwh", "-1"), 33: ("bill_status", "open"), 47: ("bill_id", "B1"),
           60: ("amount", "123456789012345678.5"), 71: ("customer_id", "")}
    for index, (column, value) in bad.items():
        rows[index][column] = value
    rows[80] = dict(rows[81])  # duplicate key: line 83 repeats line 82
    header = list(rows[0])
    write_extract(tmp_path / "fast", {"billing.bills": rows})
    lines = csv_bytes(header, rows).split(b"\n")
    lines.insert(150, b"B999999999999,too,few")  # a structural error: line 151, not in the manifest
    raw = b"\n".join(lines)
    _with_raw(tmp_path / "slow", "billing.bills", rows, raw, rows=301)
    summaries = [ingest(tmp_path / "fast", fresh_database, max_reject_rate=0.1),
                 ingest(tmp_path / "slow", fresh_database, max_reject_rate=0.1)]
    assert [s.files[0].path for s in summaries] == ["fast", "slow"]
    got = query(fresh_database, "select l.load_id, r.line_number, r.field, r.reason from ops.load_rejects r "
                                "join ops.load_ledger l using (load_id) order by 1, 2, 3")
    fast = [r[1:] for r in got if r[0] == summaries[0].files[0].load_id]
    slow = [r[1:] for r in got if r[0] == summaries[1].files[0].load_id]
    moved = [(line + (line > 150), field, reason) for line, field, reason in fast]  # after line 151
    assert [r for r in slow if r[0] != 151] == moved
    assert len(fast) == 9 and (83, None, "duplicate key, first at line 82") in fast


def test_a_failing_fast_validation_falls_back_to_the_line_by_line_path(fresh_database, tmp_path,
                                                                         monkeypatch):
    from gridcredit.ingestion import arrow_validation

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(arrow_validation.FileCheck, "_block", broken)
    rows = bills(50)
    rows[7]["amount"] = "x"
    write_extract(tmp_path / "x", {"billing.bills": rows})
    result = ingest(tmp_path / "x", fresh_database, max_reject_rate=0.1).files[0]
    assert result.path == "slow" and result.status == "loaded" and result.rows_rejected == 1
    assert "RuntimeError: boom" in result.message


def test_many_bad_lines_are_counted_beyond_the_kept_sample(fresh_database, tmp_path):
    """More bad lines than the fast path keeps fields of (a failing file): the count stays exact,
    duplicate keys on otherwise good lines included, and the first 1000 rejects are stored."""
    rows = readings(3000, meters=2000)
    for row in rows[:2000]:
        row["quality"] = "guessed"
    for i in range(2000, 3000):  # the last 1000 lines repeat the keys of the first 1000
        rows[i]["reading_date"] = rows[i - 2000]["reading_date"]
    rows[2500]["quality"] = "guessed"  # bad and a duplicate: counted once
    write_extract(tmp_path / "x", {"metering.readings": rows})
    _fails(tmp_path / "x", fresh_database, "3000 of 3000 lines rejected",
           "line 2 quality='guessed': not an allowed value (actual, estimated)")
    assert query(fresh_database, "select rows_read, rows_rejected from ops.load_ledger") == [(3000, 3000)]
    assert query(fresh_database, "select count(*), min(line_number) from ops.load_rejects") == [(1000, 2)]


def test_ingest_does_not_import_pandas(cli_env, fresh_database, tmp_path):
    """pyarrow imports pandas on first use of some conversions (~0.5 s per run): the loader avoids them."""
    import subprocess
    import sys

    basic(tmp_path / "x")
    code = ("import sys; from pathlib import Path; from gridcredit.ingestion.loader import ingest_directory; "
            "from gridcredit import warehouse; "
            f"ingest_directory(Path({str(tmp_path / 'x')!r}), warehouse.ensure_running()); "
            "print('pandas' in sys.modules)")
    env = dict(cli_env, WAREHOUSE_URL=fresh_database.url)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
