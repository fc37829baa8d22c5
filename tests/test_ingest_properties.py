"""Property-based test of ingestion (issue 7, Bad input): random malformed extracts never cause a
traceback, never put a bad row in a raw table, and every rejection carries a reason.

hypothesis draws a customers file (the table with the most rules: patterns, check digits, dates,
ranges, personal data) and damages it: bad encodings and stray bytes, broken quoting, huge fields,
wrong types, duplicated keys, reordered columns, extra or missing delimiters, NUL and line-break
characters, truncation. Derandomized with a fixed example budget so CI runs the same cases each time;
the figures (extracts tried, rows wrongly loaded) go to test-artifacts/ingest-properties.json for
docs/RELIABILITY.md.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import uuid
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ingest_helpers import csv_bytes, customers, regions, write_extract
from rich.console import Console

from gridcredit.ingestion import validation
from gridcredit.ingestion.contract import load_contract
from gridcredit.ingestion.loader import IngestError, ingest_directory

CONTRACT = load_contract()
SPEC = CONTRACT.table("billing", "customers")
HEADER = [column.name for column in SPEC.columns]
EXAMPLES = int(os.environ.get("GRIDCREDIT_PROPERTY_EXAMPLES", "50"))
ARTIFACT = Path(__file__).resolve().parent.parent / "test-artifacts" / "ingest-properties.json"

FIGURES = {
    "extracts_tried": 0,
    "files_failed_whole": 0,
    "rows_loaded": 0,
    "rows_rejected": 0,
    "rows_wrongly_loaded": 0,
    "rejections_without_reason": 0,
    "tracebacks": 0,
}

BAD_BYTES = [b"\xff\xfe", b"\x80", b"\xc3(", b"\xe4\xb8", b"\x00", b"\r", b'"', b'""', b",", b"\n", b"\xef\xbb\xbf"]
VALUE_DAMAGE = st.one_of(
    st.text(max_size=40),  # wrong types, any unicode
    st.sampled_from(
        [
            "",
            " ",
            "NULL",
            "null",
            "N/A",
            "-",
            "1e309",
            "NaN",
            "Infinity",
            "0x1F",
            "2024-02-30",
            "9999-12-31",
            "１２３",
            "C00000000１",
            "\u202e",
            'a"b',
            '"',
            "x\ny",
            "x\r\ny",
            "\t",
        ]
    ),
    st.integers(min_value=10_000, max_value=300_000).map(lambda n: "九" * n),  # huge field
)


@st.composite
def damaged_extracts(draw):
    rows = customers(50)
    header = list(HEADER)
    if draw(st.booleans()):
        header = draw(st.permutations(HEADER))  # reordered columns: must load as if in order
    for _ in range(draw(st.integers(min_value=0, max_value=6))):
        row, column = draw(st.integers(0, len(rows) - 1)), draw(st.sampled_from(HEADER))
        rows[row][column] = draw(VALUE_DAMAGE)
    for _ in range(draw(st.integers(min_value=0, max_value=2))):  # duplicated keys
        a, b = draw(st.integers(0, len(rows) - 1)), draw(st.integers(0, len(rows) - 1))
        rows[a]["customer_id"] = rows[b]["customer_id"]
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "gb18030"]))
    try:
        data = csv_bytes(header, rows, encoding=encoding)
    except UnicodeEncodeError:
        data = csv_bytes(header, rows, encoding="utf-8")
        encoding = "utf-8"
    declared = draw(st.sampled_from([encoding, encoding, encoding, None, "gb18030"]))
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2, 3]))):  # byte-level damage
        position = draw(st.integers(0, len(data)))
        data = data[:position] + draw(st.sampled_from(BAD_BYTES)) + data[position:]
    if draw(st.integers(0, 9)) == 0:
        data = data[: draw(st.integers(0, len(data)))]  # truncated delivery
    # Mostly tolerant, so that row-level rejection (not only whole-file failure) is exercised.
    max_reject_rate = draw(st.sampled_from(["1.0", "1.0", "0.5", "0.01"]))
    return rows, header, data, declared, max_reject_rate


@pytest.fixture(scope="module")
def property_database(session_warehouse):
    name = f"prop_{uuid.uuid4().hex[:8]}"
    admin = session_warehouse.with_dbname("postgres")
    with psycopg.connect(admin.url, autocommit=True) as pg:
        pg.execute(f'create database "{name}"')
    yield session_warehouse.with_dbname(name)
    with psycopg.connect(admin.url, autocommit=True) as pg:
        pg.execute(f'drop database if exists "{name}" with (force)')
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    ARTIFACT.write_text(json.dumps(FIGURES, indent=2) + "\n")


def _max_load_id(conn) -> int:
    with psycopg.connect(conn.url) as pg:
        exists = pg.execute("select to_regclass('ops.load_ledger') is not null").fetchone()[0]
        return pg.execute("select coalesce(max(load_id), 0) from ops.load_ledger").fetchone()[0] if exists else 0


def _check_new_loads(conn, after_load_id: int) -> None:
    columns = {column.name: column for column in SPEC.columns}
    with psycopg.connect(conn.url) as pg:
        loads = pg.execute(
            "select load_id, table_name, status, rows_read, rows_loaded, rows_rejected, message"
            " from ops.load_ledger where load_id > %s order by load_id",
            [after_load_id],
        ).fetchall()
        for load_id, table, status, rows_read, rows_loaded, rows_rejected, message in loads:
            raw_rows = pg.execute(f"select count(*) from raw_billing.{table} where _load_id = %s", [load_id]).fetchone()
            if status == "failed":
                FIGURES["files_failed_whole"] += 1
                assert raw_rows[0] == 0, f"failed load {load_id} left rows in raw_billing.{table}"
                assert (message or "").strip(), f"failed load {load_id} has no reason"
                continue
            assert rows_read == rows_loaded + rows_rejected and raw_rows[0] == rows_loaded
            FIGURES["rows_loaded"] += rows_loaded
            FIGURES["rows_rejected"] += rows_rejected
            rejects = pg.execute(
                "select line_number, reason from ops.load_rejects where load_id = %s", [load_id]
            ).fetchall()
            assert (len(rejects) > 0) == (rows_rejected > 0)
            missing = [line for line, reason in rejects if not (reason or "").strip()]
            FIGURES["rejections_without_reason"] += len(missing)
            assert not missing, f"load {load_id}: rejections without a reason on lines {missing}"
            if table != "customers":
                continue
            loaded = pg.execute(
                f"select {', '.join(HEADER)} from raw_billing.customers where _load_id = %s", [load_id]
            ).fetchall()
            keys = [row[0] for row in loaded]
            bad = [
                (row[0], name, reason)
                for row in loaded
                for name, value in zip(HEADER, row, strict=True)
                if (reason := validation.validate_value(columns[name], value)) is not None
            ]
            duplicates = len(keys) - len(set(keys))
            FIGURES["rows_wrongly_loaded"] += len({b[0] for b in bad}) + duplicates
            assert not bad, f"load {load_id} put invalid values in raw: {bad[:5]}"
            assert duplicates == 0, f"load {load_id} loaded a duplicated key"


@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
@given(extract=damaged_extracts())
def test_malformed_extracts_never_crash_nor_load_bad_rows(property_database, tmp_path_factory, extract):
    rows, header, data, declared, max_reject_rate = extract
    directory = tmp_path_factory.mktemp("damaged")
    write_extract(
        directory,
        {"billing.supply_regions": regions(), "billing.customers": rows},
        columns={"billing.customers": header},
        raw={"billing.customers": data},
        encoding=declared,
    )
    before = _max_load_id(property_database)
    FIGURES["extracts_tried"] += 1
    saved = os.environ.get("GRIDCREDIT_MAX_REJECT_RATE")
    os.environ["GRIDCREDIT_MAX_REJECT_RATE"] = max_reject_rate
    try:
        ingest_directory(directory, property_database, console=Console(width=200, file=io.StringIO()))
    except IngestError as error:
        assert "billing/customers.csv" in str(error) or "manifest" in str(error), str(error)
    except Exception:
        FIGURES["tracebacks"] += 1
        raise
    finally:
        if saved is None:
            os.environ.pop("GRIDCREDIT_MAX_REJECT_RATE", None)
        else:
            os.environ["GRIDCREDIT_MAX_REJECT_RATE"] = saved
        shutil.rmtree(directory, ignore_errors=True)
    _check_new_loads(property_database, before)
