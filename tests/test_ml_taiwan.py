"""The Taiwan credit default adapter: extract format, contract validity, status and label encoding."""

from __future__ import annotations

import csv
import hashlib
import json
from collections import defaultdict
from datetime import date
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from gridcredit.ingestion import identifiers
from gridcredit.ingestion.contract import load_contract
from gridcredit.ingestion.taiwan import (
    DEFAULT_CSV,
    LABEL_COLUMN,
    LABEL_MONTH,
    MONTHS,
    STATUS_COLUMNS,
    convert_taiwan,
    customer_id,
    holdout_customers,
    read_taiwan,
    settlement_months,
)
from gridcredit.ingestion.validation import validate_value

pytestmark = pytest.mark.skipif(not DEFAULT_CSV.exists(), reason=f"{DEFAULT_CSV} not present")
N = 400


@pytest.fixture(scope="module")
def extract(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("taiwan")
    convert_taiwan(out, limit=N)
    return out


def _rows(path: Path) -> list[dict]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_settlement_follows_the_delay_status():
    status = np.array(
        [
            [0, 0, 0, 0, 0, 0],  # always on time: each bill paid in its own month
            [0, 0, 0, 0, 2, 0],  # 2 months late in August: July's bill unpaid through August
            [-2, -2, 1, 2, 3, 4],  # growing delinquency: June's bill never paid by September
            [0, 0, 0, 0, 0, 1],  # September's bill overdue at the end of September
        ]
    )
    paid = settlement_months(status)
    assert paid[0].tolist() == [0, 1, 2, 3, 4, 5]
    assert paid[1].tolist() == [0, 1, 2, 5, 5, 5]
    assert paid[2].tolist() == [0, 1, 6, 6, 6, 6]
    assert paid[3].tolist() == [0, 1, 2, 3, 4, 6]


def test_every_contract_table_has_a_file_listed_in_the_manifest(extract):
    manifest = json.loads((extract / "manifest.json").read_text())
    assert manifest["schema_version"] == load_contract().current_schema_version
    assert (manifest["kind"], manifest["encoding"]) == ("full", "utf-8")
    assert (manifest["first_month"], manifest["last_month"]) == (MONTHS[0], LABEL_MONTH)
    contract = load_contract()
    assert set(manifest["files"]) == {t.file for t in contract.tables}
    for spec in contract.tables:
        entry = manifest["files"][spec.file]
        body = (extract / spec.file).read_bytes()
        assert entry["system"] == spec.system and entry["table"] == spec.name
        assert entry["sha256"] == hashlib.sha256(body).hexdigest() and entry["bytes"] == len(body)
        rows = _rows(extract / spec.file)
        assert entry["rows"] == len(rows)
        assert body.decode().splitlines()[0].split(",") == list(spec.column_names)
        for column in spec.totals:
            assert Decimal(entry["totals"][column]) == sum((Decimal(r[column]) for r in rows), Decimal(0))


def test_every_value_passes_the_contract_rules(extract):
    contract = load_contract()
    problems = []
    for spec in contract.tables:
        for line, row in enumerate(_rows(extract / spec.file), start=2):
            for name, value in row.items():
                reason = validate_value(spec.column(name), value)
                if reason:
                    problems.append((spec.file, line, name, reason))
    assert problems == []


def test_resident_ids_are_valid_unique_and_follow_age_and_sex(extract):
    frame = read_taiwan(limit=N)
    customers = _rows(extract / "billing/customers.csv")
    ids = [c["id_number"] for c in customers]
    assert len(set(ids)) == len(ids)
    assert all(identifiers.is_valid_resident_id(i) for i in ids)
    for record, (age, sex) in zip(ids, zip(frame["AGE"], frame["SEX"], strict=True), strict=True):
        assert int(record[6:10]) == 2005 - age
        assert int(record[16]) % 2 == (1 if sex == 1 else 0)


def _month_end(month: str) -> date:
    year, mon = int(month[:4]), int(month[5:7])
    return date(year + mon // 12, mon % 12 + 1, 1).fromordinal(date(year + mon // 12, mon % 12 + 1, 1).toordinal() - 1)


def _overdue_at(extract: Path, month: str) -> dict[str, float]:
    """Overdue unpaid amount per customer at the month end, bills paid oldest due first."""
    end = _month_end(month)
    bills, paid = defaultdict(list), defaultdict(float)
    for b in _rows(extract / "billing/bills.csv"):
        bills[b["customer_id"]].append((date.fromisoformat(b["due_date"]), float(b["amount"])))
    for p in _rows(extract / "billing/payments.csv"):
        if date.fromisoformat(p["paid_at"][:10]) <= end:
            paid[p["customer_id"]] += float(p["amount"])
    out = {}
    for customer, items in bills.items():
        money = paid[customer]
        overdue = 0.0
        for due, amount in sorted(items):
            covered = min(money, amount)
            money -= covered
            if due < end and amount - covered > 0.005:
                overdue += amount - covered
        out[customer] = overdue
    return out


def test_in_arrears_reproduces_the_delay_status(extract):
    frame = read_taiwan(limit=N)
    status = frame[STATUS_COLUMNS].to_numpy()
    for t, month in enumerate(MONTHS):
        overdue = _overdue_at(extract, month)
        # A status k >= 1 at month t' >= t reaching back to a bill still unpaid at t makes t overdue.
        reach = np.max(np.stack([status[:, u] - (u - t) for u in range(t, len(MONTHS))]), axis=0)
        bills_due = frame[[f"BILL_AMT{6 - b}" for b in range(t + 1)]].to_numpy()
        for i, cid in enumerate(customer_id(frame["ID"])):
            expected = reach[i] >= 1 and (np.maximum(bills_due[i, max(0, t - reach[i] + 1) :], 0) > 0).any()
            assert (overdue[cid] > 0) == expected, (cid, month)


def test_in_arrears_at_the_end_of_october_is_the_default_label(extract):
    frame = read_taiwan(limit=N)
    overdue = _overdue_at(extract, LABEL_MONTH)
    for cid, label in zip(customer_id(frame["ID"]), frame[LABEL_COLUMN], strict=True):
        assert (overdue[cid] > 1.0) == bool(label), cid


def test_holdout_is_a_fixed_stratified_30_percent():
    frame = read_taiwan()
    first, second = holdout_customers(frame), holdout_customers(frame)
    assert first == second and len(first) == 9000
    in_holdout = np.array([c in first for c in customer_id(frame["ID"])])
    assert frame.loc[in_holdout, LABEL_COLUMN].mean() == pytest.approx(frame[LABEL_COLUMN].mean(), abs=0.001)


def test_the_loader_accepts_the_extract(extract, fresh_database):
    from gridcredit.ingestion.loader import ingest_directory

    summary = ingest_directory(extract, conn=fresh_database)
    assert not summary.failed
    assert sum(f.rows_rejected or 0 for f in summary.files) == 0
