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
import pandas as pd
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
    monthly_consumption,
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


def test_consumption_is_the_balance_less_what_the_last_statement_left_unpaid():
    frame = pd.DataFrame(
        {
            "BILL_AMT6": [1000, 5000, 0],  # April
            "BILL_AMT5": [800, 5200, 0],
            "BILL_AMT4": [0, 5400, 0],
            "BILL_AMT3": [300, 5300, 200],
            "BILL_AMT2": [300, 5500, 0],
            "BILL_AMT1": [-50, 5600, 0],  # September
            "PAY_AMT6": [900, 200, 0],
            "PAY_AMT5": [1000, 200, 0],  # paid in full: May's spending = its balance
            "PAY_AMT4": [800, 200, 0],
            "PAY_AMT3": [0, 200, 0],
            "PAY_AMT2": [300, 200, 200],
            "PAY_AMT1": [300, 200, 0],
        }
    )
    spent = monthly_consumption(frame)
    assert spent[0].tolist() == [1000, 800, 0, 300, 300, 0]  # transactor; a credit balance is no spending
    assert spent[1].tolist() == [5000, 400, 400, 100, 400, 300]  # revolver: balance >> the month's spending
    assert spent[2].tolist() == [0, 0, 0, 200, 0, 0]  # no consumption


def test_readings_carry_each_months_consumption_on_one_meter(extract):
    frame = read_taiwan(limit=N)
    spent = monthly_consumption(frame)
    meters = {m["meter_id"]: m["customer_id"] for m in _rows(extract / "billing/meters.csv")}
    assert sorted(meters.values()) == sorted(customer_id(frame["ID"]))
    by_customer = defaultdict(dict)
    for r in _rows(extract / "metering/readings.csv"):
        assert r["quality"] == "actual"
        by_customer[meters[r["meter_id"]]][r["reading_date"][:7]] = float(r["kwh"])
    for i, cid in enumerate(customer_id(frame["ID"])):
        assert [by_customer[cid][m] for m in MONTHS] == pytest.approx(spent[i].tolist(), abs=0.005)


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


def _synthetic_feature_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """A small stand-in for the feature mart: days past due from the status, the bill, the label."""
    from gridcredit.ml.features import MONTH_INDEX, month_index

    status = frame[STATUS_COLUMNS].to_numpy()
    next_status = np.column_stack([status[:, 1:], np.where(frame[LABEL_COLUMN] == 1, 1, -1)])
    ids = customer_id(frame["ID"])
    return pd.DataFrame(
        {
            "customer_id": np.repeat(ids, len(MONTHS)),
            MONTH_INDEX: np.tile(month_index([f"{m}-01" for m in MONTHS]), len(ids)),
            "days_past_due": np.maximum(status, 0).ravel() * 30.0,
            "billed_amount": frame[[f"BILL_AMT{6 - t}" for t in range(len(MONTHS))]].to_numpy(dtype=float).ravel(),
            "is_in_arrears_next_month": (next_status >= 1).astype(float).ravel(),
        }
    )


def _scrambled(rows: pd.DataFrame, frame: pd.DataFrame, in_holdout_rows: bool) -> pd.DataFrame:
    """Features and label permuted among the holdout's rows (or among the training rows)."""
    rng = np.random.default_rng(1)
    in_holdout = rows["customer_id"].isin(holdout_customers(frame, 0.3, 0)).to_numpy()
    where = in_holdout if in_holdout_rows else ~in_holdout
    out = rows.copy()
    columns = ("days_past_due", "billed_amount", "is_in_arrears_next_month") if in_holdout_rows else (
        "is_in_arrears_next_month",
    )
    for column in columns:
        out.loc[where, column] = rng.permutation(out.loc[where, column].to_numpy())
    return out


def _dataset(data: pd.DataFrame):
    from types import SimpleNamespace

    return SimpleNamespace(
        frame=data,
        features=["days_past_due", "billed_amount"],
        labels={"arrears_next_month": "is_in_arrears_next_month"},
        customer_col="customer_id",
    )


def test_training_cross_validation_never_reads_the_holdout():
    """The figure mapping choices are made on depends on the training cardholders only: scrambling
    every holdout row (features and label) leaves it unchanged, scrambling a training row does not."""
    from threadpoolctl import threadpool_limits

    from gridcredit.ml.config import load_config
    from gridcredit.ml.validate_taiwan import training_cross_validation

    frame = read_taiwan(limit=1500)
    rows = _synthetic_feature_rows(frame)
    cfg = load_config()

    def run(data):
        with threadpool_limits(limits=1):  # as the validation runs it (one thread: fast and machine-independent)
            return training_cross_validation(_dataset(data), frame, cfg, folds=3)

    first = run(rows)
    assert len(first["cv_auc_training_folds"]) == 3 and first["cv_auc_training"] > 0.6
    assert run(_scrambled(rows, frame, in_holdout_rows=True)) == first
    assert run(_scrambled(rows, frame, in_holdout_rows=False)) != first


def test_settings_search_never_reads_the_holdout_and_its_checkpoints_are_real_fits(tmp_path):
    """The settings search (ADR 0033) ranks candidates on the training cardholders only; a candidate
    read at iteration k from staged predictions has the CV AUC of a model fitted with max_iter=k; and
    the settings chosen in the file reach the validation's model (constraints included)."""
    import copy

    from threadpoolctl import threadpool_limits

    from gridcredit.ml.config import load_config
    from gridcredit.ml.validate_taiwan import search_settings, taiwan_model_settings, training_cross_validation

    frame = read_taiwan(limit=1500)
    rows = _synthetic_feature_rows(frame)
    cfg = load_config()
    space = {
        "folds": 3,
        "seed": 0,
        "checkpoints": [5, 20],
        "stage_1": {"max_leaf_nodes": [3, 7]},
        "stage_2": [{"monotonic": {"days_past_due": 1}}, {"exclude_features": ["billed_amount"]}],
    }

    def search(data, jobs=1):
        with threadpool_limits(limits=1):
            return search_settings(_dataset(data), frame, cfg, space, jobs=jobs)

    found = search(rows)
    assert search(rows, jobs=2) == found  # folds in worker processes: same figures
    assert found["n_candidates"] == 8 and found["holdout_read"] is False
    assert found["chosen"]["cv_auc"] == max(c["cv_auc"] for c in found["candidates"])
    assert search(_scrambled(rows, frame, in_holdout_rows=True)) == found
    assert search(_scrambled(rows, frame, in_holdout_rows=False))["candidates"] != found["candidates"]

    # Staged predictions at iteration 20 == a model fitted with max_iter 20 (same CV, same folds).
    candidate = next(c for c in found["candidates"] if c["stage"] == "stage_1" and c["gbm"]["max_leaf_nodes"] == 7
                     and c["gbm"]["max_iter"] == 20)
    direct = copy.deepcopy(cfg)
    direct["arrears_warning"]["gbm"] = candidate["gbm"]
    with threadpool_limits(limits=1):
        refit = training_cross_validation(_dataset(rows), frame, direct, folds=3)
    assert refit["cv_auc_training_folds"] == pytest.approx(candidate["cv_auc_folds"], abs=1e-5)

    # The chosen block reaches the validation's model; production's configuration is left alone.
    settings = tmp_path / "taiwan_settings.yaml"
    monotonic_candidate = next(c for c in found["candidates"] if c["monotonic"] and c["gbm"]["max_iter"] == 20)
    settings.write_text(json.dumps({"chosen": {k: monotonic_candidate[k] for k in ("gbm", "monotonic")}}))
    chosen_cfg, chosen = taiwan_model_settings(cfg, settings)
    assert chosen_cfg["arrears_warning"]["gbm"] == monotonic_candidate["gbm"]
    assert cfg["arrears_warning"]["gbm"] == load_config()["arrears_warning"]["gbm"]
    with threadpool_limits(limits=1):
        constrained = training_cross_validation(_dataset(rows), frame, chosen_cfg, folds=3)
    assert constrained["cv_auc_training_folds"] == pytest.approx(monotonic_candidate["cv_auc_folds"], abs=1e-5)


def test_declared_feature_choices_name_feature_mart_columns():
    """Every feature a declared Taiwan search or the chosen block leaves out or constrains is a column
    of the feature mart (a misspelt name would silently exclude nothing)."""
    import yaml

    root = Path(__file__).resolve().parents[1]
    models = yaml.safe_load((root / "dbt_project/models/marts/ml/_ml__models.yml").read_text())["models"]
    columns = {c["name"] for m in models if m["name"] == "fct_customer_month_features" for c in m["columns"]}
    settings = yaml.safe_load((root / "ml/taiwan_settings.yaml").read_text())
    named = set(settings["chosen"].get("exclude_features") or []) | set(settings["chosen"].get("monotonic") or {})
    for block in ("search", "indicator_search"):
        for variant in settings[block].get("stage_2") or []:
            named |= set(variant.get("exclude_features") or []) | set(variant.get("monotonic") or {})
    assert named and named <= columns, sorted(named - columns)
