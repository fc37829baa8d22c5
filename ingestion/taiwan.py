"""Map the Taiwan credit card default data into the billing source extract (``contract.yaml``).

The data (Yeh & Lien 2009, UCI; ``../shared/data/real/taiwan_credit_default/``) holds, for
30,000 cardholders, six monthly statements April-September 2005 (``BILL_AMT6..1``), the amounts
paid (``PAY_AMT6..1``), the repayment status of each month (``PAY_6..PAY_0``: -2 no consumption,
-1 paid in full, 0 revolving, k = k months of delay), the credit limit and "default next month"
(October). The mapping, chosen so the warehouse's own definitions (days past due = age of the
oldest unpaid overdue bill, in arrears = overdue amount above the tolerance) reproduce the bank's
repayment status:

- one customer per cardholder (``C`` + ID), a person with a synthetic resident ID whose birth
  year comes from ``AGE`` and whose sequence digit parity from ``SEX`` (valid check digit); one
  supply region (710000 Taiwan), industry ``O`` (resident services), tariff ``TW-CARD``
  (1 "kWh" = TWD 1), contract capacity = credit limit / 1,000 (the customer's scale);
- one bill per statement month: amount = the statement balance (negative balances -> 0), issued
  on the 5th, due on the 20th; its kWh = the month's consumption (below);
- consumption: the card's spending in the month, ``BILL_AMT[t] - BILL_AMT[t-1] + PAY_AMT[t]``
  (this statement's balance minus what was left unpaid of the last one; at least 0; April, with
  no earlier statement: its balance), delivered as one actual meter reading per month (one meter
  per cardholder, read on the statement date). This is how the amounts paid reach the warehouse,
  and what tells a revolving customer (status 0: the balance is much larger than the month's
  consumption, the rest is carried over) from one who pays in full (-1: balance ~ consumption) or
  has no consumption (-2: zero). Days past due stay driven by the status (next point);
- payments are derived from the delay status, "a delay of k months becomes a payment k months
  after due": bill b is still unpaid at the end of month t when some later status says so
  (status s at month t' >= t reaching back to b: s >= t' - b + 1); it is paid in full on the 15th
  of the month after the last such month (on time, before the due date, when no status reaches
  it). The payments therefore settle whole bills; the amounts paid (``PAY_AMT``) enter through
  the consumption above;
- October is written only to carry the label: an October bill (the September balance, at least
  TWD 1,000) and, for customers who did NOT default, payment of everything outstanding on
  15 October. "In arrears at the end of next month" of the September as-of row is then exactly
  ``default.payment.next.month``. Features as of September never see October.

Every other contract table is written header-only (rows 0), as the contract allows.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd

from gridcredit.ingestion.contract import load_contract
from gridcredit.ingestion.identifiers import resident_id_check_char

DEFAULT_CSV = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "data"
    / "real"
    / "taiwan_credit_default"
    / "taiwan_credit_default.csv"
)
MONTHS = ["2005-04", "2005-05", "2005-06", "2005-07", "2005-08", "2005-09"]
LABEL_MONTH = "2005-10"
STATUS_COLUMNS = ["PAY_6", "PAY_5", "PAY_4", "PAY_3", "PAY_2", "PAY_0"]  # April .. September
BILL_COLUMNS = ["BILL_AMT6", "BILL_AMT5", "BILL_AMT4", "BILL_AMT3", "BILL_AMT2", "BILL_AMT1"]
PAID_COLUMNS = ["PAY_AMT6", "PAY_AMT5", "PAY_AMT4", "PAY_AMT3", "PAY_AMT2", "PAY_AMT1"]
LABEL_COLUMN = "default.payment.next.month"
REGION_CODE = "710000"
TARIFF_CODE = "TW-CARD"
OPEN_DATE = "2005-04-01"
MIN_LABEL_BILL = 1000.0
ISSUE_DAY, PAY_DAY, DUE_DAY = 5, 15, 20


def read_taiwan(path: Path | None = None, limit: int | None = None) -> pd.DataFrame:
    frame = pd.read_csv(path or DEFAULT_CSV)
    expected = {"ID", "LIMIT_BAL", "SEX", "AGE", LABEL_COLUMN, *STATUS_COLUMNS, *BILL_COLUMNS, *PAID_COLUMNS}
    missing = sorted(expected - set(frame.columns))
    if missing:
        raise ValueError(f"not the Taiwan credit default file: columns {missing} missing")
    frame = frame.sort_values("ID", kind="stable", ignore_index=True)
    return frame.head(limit) if limit else frame


def customer_id(ids) -> list[str]:
    return [f"C{int(i):09d}" for i in ids]


def settlement_months(status: np.ndarray) -> np.ndarray:
    """Month (0-5, or 6 = after September) in which each bill is paid, per customer.

    ``status[:, t]`` is the repayment status of month t (April = 0). Bill b is unpaid at the end
    of month t' when ``status[:, t'] >= t' - b + 1``; it stays unpaid until the last such month
    and is paid the month after (month b itself when no status reaches it).
    """
    n, months = status.shape
    paid = np.empty((n, months), dtype=int)
    for b in range(months):
        last_unpaid = np.full(n, -1)
        for t in range(b, months):
            reaches = status[:, t] >= (t - b + 1)
            last_unpaid = np.where(reaches, t, last_unpaid)
        paid[:, b] = np.where(last_unpaid >= b, last_unpaid + 1, b)
    return paid


def monthly_consumption(frame: pd.DataFrame) -> np.ndarray:
    """The card's spending per month (April = 0), from the statements and the amounts paid.

    ``BILL_AMT[t] - BILL_AMT[t-1] + PAY_AMT[t]``: this statement's balance less what the last one
    left unpaid (interest and fees included), at least 0; April, without an earlier statement,
    is its own balance.
    """
    bill = frame[BILL_COLUMNS].to_numpy(dtype=float)
    paid = frame[PAID_COLUMNS].to_numpy(dtype=float)
    spent = np.empty_like(bill)
    spent[:, 0] = bill[:, 0]
    spent[:, 1:] = bill[:, 1:] - bill[:, :-1] + paid[:, 1:]
    return np.maximum(spent, 0.0)


def _resident_ids(frame: pd.DataFrame) -> list[str]:
    """Valid, unique synthetic resident IDs: birth year from AGE (as of 2005), parity from SEX."""
    ids, used = [], {}
    for row_id, age, sex in zip(frame["ID"], frame["AGE"], frame["SEX"], strict=True):
        year = 2005 - int(age)
        day = dt.date(year, 1, 1) + dt.timedelta(days=(int(row_id) * 7919) % 365)
        key = (day, int(sex))
        k = used.get(key, 0)
        used[key] = k + 1
        seq = 2 * k + (1 if int(sex) == 1 else 2)
        if seq > 999:
            raise ValueError("too many customers share a birth date")
        first17 = f"{REGION_CODE}{day:%Y%m%d}{seq:03d}"
        ids.append(first17 + resident_id_check_char(first17))
    return ids


def _money(values) -> list[str]:
    return [f"{Decimal(str(round(float(v), 2))):.2f}" for v in values]


def _date(month: str, day: int) -> str:
    return f"{month}-{day:02d}"


def build_tables(frame: pd.DataFrame) -> dict[tuple[str, str], pd.DataFrame]:
    """Contract tables (as string frames) for the Taiwan rows."""
    n = len(frame)
    ids = frame["ID"].to_numpy()
    cust = customer_id(ids)
    status = frame[STATUS_COLUMNS].to_numpy(dtype=int)
    balance = np.maximum(frame[BILL_COLUMNS].to_numpy(dtype=float), 0.0)
    default = frame[LABEL_COLUMN].to_numpy(dtype=int) == 1
    months = [*MONTHS, LABEL_MONTH]

    tables: dict[tuple[str, str], pd.DataFrame] = {}
    tables[("billing", "supply_regions")] = pd.DataFrame(
        [{"region_code": REGION_CODE, "region_name": "Taiwan", "city_code": REGION_CODE, "city_name": "Taiwan"}]
    )
    tables[("billing", "tariffs")] = pd.DataFrame(
        [
            {
                "tariff_code": TARIFF_CODE,
                "tariff_name": "Taiwan credit card statement (1 unit = TWD 1)",
                "customer_type": "residential",
                "price_per_kwh": "1.0000",
            }
        ]
    )
    tables[("billing", "customers")] = pd.DataFrame(
        {
            "customer_id": cust,
            "customer_kind": "person",
            "customer_name": [f"Taiwan cardholder {int(i):05d}" for i in ids],
            "id_number": _resident_ids(frame),
            "phone": "",
            "address": "",
            "enterprise_id": "",
            "region_code": REGION_CODE,
            "industry_code": "O",
            "customer_type": "residential",
            "voltage_level": "0.22kV",
            "tariff_code": TARIFF_CODE,
            "settlement_method": "monthly",
            "payment_method": "online",
            "contract_capacity_kva": _money(frame["LIMIT_BAL"].to_numpy(dtype=float) / 1000.0),
            "open_date": OPEN_DATE,
            "close_date": "",
            "email": "",
        }
    )

    # Bills: six statements + the October bill that carries the label.
    label_bill = np.maximum(balance[:, -1], MIN_LABEL_BILL)
    amounts = np.column_stack([balance, label_bill])
    consumption = monthly_consumption(frame)
    billed_kwh = np.column_stack([consumption, np.zeros(n)])  # October's consumption is not in the data
    bills = []
    for t, month in enumerate(months):
        bills.append(
            pd.DataFrame(
                {
                    "bill_id": [f"B{int(i):07d}{t:05d}" for i in ids],
                    "customer_id": cust,
                    "billing_period": month,
                    "issue_date": _date(month, ISSUE_DAY),
                    "due_date": _date(month, DUE_DAY),
                    "kwh": _money(billed_kwh[:, t]),
                    "amount": _money(amounts[:, t]),
                    "tariff_code": TARIFF_CODE,
                    "bill_status": "issued",
                }
            )
        )
    tables[("billing", "bills")] = pd.concat(bills, ignore_index=True)

    # One meter per cardholder, read once a month on the statement date: the month's consumption.
    meter = [f"M{int(i):010d}" for i in ids]
    tables[("billing", "meters")] = pd.DataFrame(
        {"meter_id": meter, "customer_id": cust, "install_date": OPEN_DATE, "remove_date": "", "removal_reason": ""}
    )
    tables[("metering", "readings")] = pd.concat(
        [
            pd.DataFrame(
                {
                    "meter_id": meter,
                    "reading_date": _date(month, ISSUE_DAY),
                    "kwh": _money(consumption[:, t]),
                    "quality": "actual",
                }
            )
            for t, month in enumerate(MONTHS)
        ],
        ignore_index=True,
    )

    # Payments: bill b paid in full in month settlement[b]; anything still unpaid after September
    # (and the October bill) is paid on 15 October unless the customer defaulted.
    settle = settlement_months(status)
    paid = np.zeros((n, len(months)))
    for b in range(len(MONTHS)):
        for p in range(len(months)):
            mask = settle[:, b] == p
            paid[mask, p] += amounts[mask, b]
    paid[:, -1] += amounts[:, -1]
    paid[default, -1] = 0.0
    payments = []
    for p, month in enumerate(months):
        who = np.flatnonzero(paid[:, p] > 0)
        payments.append(
            pd.DataFrame(
                {
                    "payment_id": [f"P{int(i):07d}{p:05d}" for i in ids[who]],
                    "customer_id": [cust[i] for i in who],
                    "paid_at": f"{_date(month, PAY_DAY)} 10:00:00",
                    "amount": _money(paid[who, p]),
                    "channel": "online",
                    "reverses_payment_id": "",
                }
            )
        )
    tables[("billing", "payments")] = pd.concat(payments, ignore_index=True)
    return tables


def _csv_bytes(columns: list[str], frame: pd.DataFrame | None) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    if frame is not None and len(frame):
        writer.writerows(frame[columns].itertuples(index=False, name=None))
    return buffer.getvalue().encode("utf-8")


def convert_taiwan(out_dir: Path, csv_path: Path | None = None, limit: int | None = None) -> dict:
    """Write the extract (CSV files + ``manifest.json``) to ``out_dir``; return the manifest.

    Parameters
    ----------
    out_dir : Path
        Extract folder (created; existing files are overwritten).
    csv_path : Path, optional
        The Taiwan CSV (default: the shared copy).
    limit : int, optional
        Only the first ``limit`` cardholders (tests).
    """
    frame = read_taiwan(csv_path, limit)
    tables = build_tables(frame)
    contract = load_contract()
    out_dir = Path(out_dir)
    files = {}
    for spec in contract.tables:
        data = tables.get((spec.system, spec.name))
        body = _csv_bytes(list(spec.column_names), data)
        path = out_dir / spec.file
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        entry = {
            "system": spec.system,
            "table": spec.name,
            "rows": 0 if data is None else len(data),
            "sha256": hashlib.sha256(body).hexdigest(),
            "bytes": len(body),
        }
        if spec.totals:
            entry["totals"] = {
                c: f"{sum((Decimal(v) for v in data[c]), Decimal(0)) if data is not None else Decimal(0):.2f}"
                for c in spec.totals
            }
        files[spec.file] = entry
    manifest = {
        "schema_version": contract.current_schema_version,
        "kind": "full",
        "encoding": "utf-8",
        "first_month": MONTHS[0],
        "last_month": LABEL_MONTH,
        "files": files,
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return manifest


def holdout_customers(frame: pd.DataFrame, test_size: float = 0.3, seed: int = 0) -> set[str]:
    """The fixed stratified holdout: ``test_size`` of cardholders by the default label (seed 0)."""
    from sklearn.model_selection import train_test_split

    _, test = train_test_split(
        frame["ID"].to_numpy(), test_size=test_size, random_state=seed, stratify=frame[LABEL_COLUMN].to_numpy()
    )
    return set(customer_id(test))
