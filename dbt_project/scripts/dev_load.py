"""Small development data set for the dbt project, loaded straight into the raw tables.

Stand-in for `gridcredit generate` + `gridcredit ingest` while those are being written, and a fast,
fully controlled fixture for the dbt tests. It creates the raw tables exactly as the contract says
(schema ``raw_<system>``, every column ``text``, plus ``_load_id`` and ``_line_number``, list-partitioned
by ``_load_id``) and ``ops.load_ledger`` with ingestion's own DDL, and COPYs rows in with a
ledger row per table and load.

Data is deterministic per (seed, customer, month), so a 25-month set has exactly the rows of the
24-month set plus the 25th month: ``load_month`` loads one more month as an increment, the way the
source systems deliver it.

Usage::

    python dbt_project/scripts/dev_load.py --url URL --customers 500 --months 24
    python dbt_project/scripts/dev_load.py --url URL --customers 500 --months 25 --only-month 2024-12
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import random
from collections import defaultdict
from pathlib import Path

import psycopg
import yaml

from gridcredit.ingestion import loader

CONTRACT = Path(__file__).resolve().parents[2] / "ingestion" / "contract.yaml"

# Event-dated tables: the column whose month places a row in a monthly increment.
EVENT_MONTH_COLUMN = {
    ("billing", "customer_changes"): "effective_date",
    ("billing", "bills"): "issue_date",
    ("billing", "payments"): "paid_at",
    ("billing", "collection_events"): "event_date",
    ("billing", "deposits"): "txn_date",
    ("billing", "prepaid_balances"): "balance_date",
    ("metering", "readings"): "reading_date",
    ("metering", "meter_events"): "event_at",
    ("inspection", "inspections"): "inspection_date",
    ("registry", "legal_events"): "event_date",
    ("macro", "industry_activity"): "activity_month",
}

INDUSTRIES = "ABCDEFGHIJKLMNOPQRST"
REGIONS = [
    ("330102", "Shangcheng", "330100", "Hangzhou"),
    ("330105", "Gongshu", "330100", "Hangzhou"),
    ("330106", "Xihu", "330100", "Hangzhou"),
    ("330203", "Haishu", "330200", "Ningbo"),
    ("330205", "Jiangbei", "330200", "Ningbo"),
    ("330302", "Lucheng", "330300", "Wenzhou"),
]
TARIFFS = [
    ("RES-1", "Residential tier 1", "residential", "0.5380"),
    ("GCI-1", "General commercial and industrial", "general_commercial_industrial", "0.6610"),
    ("LI-10", "Large industrial 10kV", "large_industrial", "0.5900"),
    ("LI-35", "Large industrial 35kV", "large_industrial", "0.5650"),
    ("AGR-1", "Agricultural production", "agricultural", "0.4790"),
]
TARIFF_BY_TYPE = {
    "residential": ["RES-1"],
    "general_commercial_industrial": ["GCI-1"],
    "large_industrial": ["LI-10", "LI-35"],
    "agricultural": ["AGR-1"],
}
RID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
USCC_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def resident_id(rng: random.Random, region: str) -> str:
    birth = dt.date(1950, 1, 1) + dt.timedelta(days=rng.randrange(0, 18000))
    first17 = f"{region}{birth:%Y%m%d}{rng.randrange(0, 1000):03d}"
    total = sum(int(c) * w for c, w in zip(first17, RID_WEIGHTS, strict=True))
    return first17 + "10X98765432"[total % 11]


def uscc(rng: random.Random, region: str) -> str:
    body = "91" + region + "".join(rng.choice(USCC_CHARSET[:10]) for _ in range(9))
    total = sum(USCC_CHARSET.index(c) * w for c, w in zip(body, USCC_WEIGHTS, strict=True))
    return body + USCC_CHARSET[(31 - total % 31) % 31]


def month_add(month: dt.date, n: int) -> dt.date:
    index = month.year * 12 + month.month - 1 + n
    return dt.date(index // 12, index % 12 + 1, 1)


def month_end(month: dt.date) -> dt.date:
    return month_add(month, 1) - dt.timedelta(days=1)


def rng_for(seed: int, *parts: object) -> random.Random:
    digest = hashlib.sha256(repr((seed, *parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def money(value: float) -> str:
    return f"{value:.2f}"


def generate(customers: int, months: int, seed: int = 7, start_month: str = "2023-01") -> dict:
    """Rows per (system, table) as lists of dicts keyed by contract column."""
    start = dt.date.fromisoformat(start_month + "-01")
    last_month = month_add(start, months - 1)
    horizon = month_end(last_month)
    out: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for code, name, city, city_name in REGIONS:
        out["billing", "supply_regions"].append(
            {"region_code": code, "region_name": name, "city_code": city, "city_name": city_name})
    for code, name, ctype, price in TARIFFS:
        out["billing", "tariffs"].append(
            {"tariff_code": code, "tariff_name": name, "customer_type": ctype, "price_per_kwh": price})
    for industry in INDUSTRIES:
        for m in range(months):
            month = month_add(start, m)
            rng = rng_for(seed, "activity", industry, m)
            out["macro", "industry_activity"].append({
                "industry_code": industry, "activity_month": f"{month:%Y-%m}",
                "activity_index": money(100 + 8 * rng.random() - (15 if industry == "C" and m > 12 else 0)),
            })

    enterprise_count = 0
    meter_count = 0
    reps = [resident_id(rng_for(seed, "rep", i), "330102") for i in range(max(3, customers // 40))]
    enterprises: list[dict] = []
    for c in range(1, customers + 1):
        rng = rng_for(seed, "customer", c)
        customer_id = f"C{c:09d}"
        region = rng.choice(REGIONS)[0]
        is_org = rng.random() < 0.3
        ctype = (rng.choice(["general_commercial_industrial", "large_industrial", "agricultural"])
                 if is_org else "residential")
        tariff = rng.choice(TARIFF_BY_TYPE[ctype])
        price = float(next(t[3] for t in TARIFFS if t[0] == tariff))
        open_date = start - dt.timedelta(days=rng.randrange(0, 2000)) if rng.random() < 0.85 else \
            start + dt.timedelta(days=rng.randrange(0, 28 * 24))
        close_date = None
        if rng.random() < 0.05:
            close_date = open_date + dt.timedelta(days=rng.randrange(200, 1200))
            if close_date > horizon or close_date < start:
                close_date = None
        settlement = "prepaid" if (not is_org and rng.random() < 0.1) else (
            "split_monthly" if ctype == "large_industrial" else "monthly")
        method = "prepaid_card" if settlement == "prepaid" else rng.choice(["counter", "bank_debit", "online"])
        enterprise_id = None
        if is_org:
            enterprise_count += 1
            enterprise_id = f"E{enterprise_count:08d}"
            enterprises.append({
                "enterprise_id": enterprise_id, "enterprise_name": f"Firm {enterprise_count}",
                "uscc": uscc(rng, region),
                "legal_representative_name": f"Rep {enterprise_count}",
                "legal_representative_id_number": rng.choice(reps) if rng.random() < 0.3
                else resident_id(rng, region),
                "actual_controller_id_number": rng.choice(reps) if rng.random() < 0.2 else None,
                "registered_capital": money(rng.choice([1e6, 5e6, 2e7, 1e8])),
                "industry_code": rng.choice(INDUSTRIES), "established_date": "2005-06-01",
            })
        industry = enterprises[-1]["industry_code"] if is_org else "T"
        behaviour = rng.choices(["good", "late", "partial", "bad", "over", "advance"],
                                weights=[55, 15, 10, 7, 8, 5])[0]
        thief = rng.random() < 0.04
        capacity = rng.choice([8, 16, 50, 200, 630, 2000]) if is_org else rng.choice([4, 8])
        out["billing", "customers"].append({
            "customer_id": customer_id, "customer_kind": "organisation" if is_org else "person",
            "customer_name": f"Name {c}",
            "id_number": enterprises[-1]["uscc"] if is_org else resident_id(rng, region),
            "phone": f"13{rng.randrange(10**8, 10**9)}", "address": f"{c} Road, {region}",
            "enterprise_id": enterprise_id, "region_code": region, "industry_code": industry,
            "customer_type": ctype, "voltage_level": "10kV" if ctype == "large_industrial" else "0.4kV",
            "tariff_code": tariff, "settlement_method": settlement, "payment_method": method,
            "contract_capacity_kva": str(capacity), "open_date": open_date.isoformat(),
            "close_date": close_date.isoformat() if close_date else None,
            "email": f"c{c}@example.cn" if rng.random() < 0.5 else None,
        })
        if rng.random() < 0.15:
            change_date = start + dt.timedelta(days=rng.randrange(30, 28 * 24))
            new_method = "online" if method != "online" else "bank_debit"
            if settlement != "prepaid":
                out["billing", "customer_changes"].append({
                    "change_id": f"CH{c:09d}1", "customer_id": customer_id, "attribute": "payment_method",
                    "old_value": method, "new_value": new_method, "effective_date": change_date.isoformat()})
                out["billing", "customers"][-1]["payment_method"] = new_method
        meter_count += 1
        meters = [(f"M{meter_count:010d}", max(open_date, start - dt.timedelta(days=400)), None)]
        if rng.random() < 0.08:
            swap = start + dt.timedelta(days=rng.randrange(60, 28 * 24))
            meter_count += 1
            meters = [(meters[0][0], meters[0][1], swap), (f"M{meter_count:010d}", swap, None)]
        for meter_id, install, remove in meters:
            out["billing", "meters"].append({
                "meter_id": meter_id, "customer_id": customer_id, "install_date": install.isoformat(),
                "remove_date": remove.isoformat() if remove else None,
                "removal_reason": ("tamper" if thief else "replacement") if remove else None})
        if is_org and rng.random() < 0.1:
            out["billing", "deposits"].append({
                "deposit_txn_id": f"D{c:09d}", "customer_id": customer_id,
                "txn_date": max(open_date, start).isoformat(), "txn_type": "deposit",
                "amount": money(capacity * 50.0)})

        base = {"residential": 6, "general_commercial_industrial": 60, "large_industrial": 900,
                "agricultural": 30}[ctype] * (0.5 + rng.random())
        credit = 0.0
        unpaid: list[tuple[dt.date, float]] = []
        for m in range(months):
            month = month_add(start, m)
            mend = month_end(month)
            if month_end(month) < open_date or (close_date and month > close_date):
                continue
            mrng = rng_for(seed, "month", c, m)
            kwh_total = 0.0
            for day in range((mend - month).days + 1):
                date = month + dt.timedelta(days=day)
                if date < open_date or (close_date and date > close_date):
                    continue
                meter_id = next((mid for mid, ins, rem in meters if ins <= date and (rem is None or date < rem)),
                                None)
                if meter_id is None or mrng.random() < 0.02:
                    continue  # missing reading day
                season = 1.25 if month.month in (1, 7, 8, 12) else 1.0
                kwh = base * season * (0.7 + 0.6 * mrng.random())
                if (thief and m > 8 and mrng.random() < 0.6) or mrng.random() < 0.01:
                    kwh = 0.0
                kwh_total += kwh
                out["metering", "readings"].append({
                    "meter_id": meter_id, "reading_date": date.isoformat(), "kwh": money(kwh),
                    "quality": "estimated" if mrng.random() < 0.03 else "actual"})
            if thief and mrng.random() < 0.3:
                out["metering", "meter_events"].append({
                    "event_id": f"EV{c:09d}{m:03d}", "meter_id": meters[-1][0],
                    "event_at": f"{month + dt.timedelta(days=mrng.randrange(0, 28))} 03:1{m % 10}:00",
                    "event_type": mrng.choice(["cover_open", "reverse_flow", "magnetic_interference"])})
            if (thief and mrng.random() < 0.15) or mrng.random() < 0.01:
                outcome = "theft_confirmed" if thief and mrng.random() < 0.7 else mrng.choice(["normal", "violation"])
                out["inspection", "inspections"].append({
                    "inspection_id": f"I{c:09d}{m:03d}", "customer_id": customer_id,
                    "inspection_date": (month + dt.timedelta(days=mrng.randrange(0, 28))).isoformat(),
                    "trigger": "targeted" if thief else "routine", "outcome": outcome,
                    "recovered_amount": money(kwh_total * price if outcome == "theft_confirmed" else 0)})
            if settlement == "prepaid":
                out["billing", "prepaid_balances"].append({
                    "customer_id": customer_id, "balance_date": mend.isoformat(),
                    "balance_amount": money(50 + 100 * mrng.random() - (60 if behaviour == "bad" else 0))})
            issue = mend + dt.timedelta(days=3)
            if issue > horizon:
                continue
            issue_month_index = m + 1
            brng = rng_for(seed, "bill", c, issue_month_index)
            amount = round(kwh_total * price, 2)
            status = "issued"
            if brng.random() < 0.005:
                status = "cancelled"
            due = issue + dt.timedelta(days=20)
            if behaviour == "bad" and m > 12 and brng.random() < 0.3:
                status = "written_off"
            out["billing", "bills"].append({
                "bill_id": f"B{c:07d}{issue_month_index:03d}01", "customer_id": customer_id,
                "billing_period": f"{month:%Y-%m}", "issue_date": issue.isoformat(),
                "due_date": due.isoformat(), "kwh": money(kwh_total), "amount": money(amount),
                "tariff_code": tariff, "bill_status": status})
            if status == "cancelled":
                continue
            unpaid.append((due, amount))
            # Payments for this bill, in this customer's style.
            pays: list[tuple[dt.datetime, float]] = []
            if behaviour == "good" or (behaviour == "late" and brng.random() < 0.4):
                pays.append((dt.datetime.combine(due - dt.timedelta(days=brng.randrange(0, 15)), dt.time(10)), amount))
            elif behaviour == "late":
                pays.append((dt.datetime.combine(due + dt.timedelta(days=brng.randrange(3, 70)), dt.time(15)), amount))
            elif behaviour == "partial":
                share = 0.5 + 0.4 * brng.random()
                pays.append((dt.datetime.combine(due - dt.timedelta(days=2), dt.time(9)), round(amount * share, 2)))
                pays.append((dt.datetime.combine(due + dt.timedelta(days=brng.randrange(10, 50)), dt.time(9)),
                             round(amount * (1 - share), 2)))
            elif behaviour == "bad":
                if m < 12 or brng.random() < 0.2:
                    pays.append((dt.datetime.combine(due + dt.timedelta(days=brng.randrange(0, 90)), dt.time(11)),
                                 amount))
            elif behaviour == "over":
                pays.append((dt.datetime.combine(due - dt.timedelta(days=5), dt.time(12)), round(amount, -2) + 100))
            elif behaviour == "advance":
                if (m % 3) == 0:
                    pays.append((dt.datetime.combine(issue - dt.timedelta(days=brng.randrange(5, 20)), dt.time(8)),
                                 round(amount * 3, 2)))
            for k, (paid_at, value) in enumerate(pays):
                if paid_at.date() > horizon or value <= 0:
                    continue
                # ids depend only on (customer, month, sequence): an increment never reuses one
                payment_id = f"P{c:07d}{issue_month_index:03d}{2 * k:02d}"
                out["billing", "payments"].append({
                    "payment_id": payment_id, "customer_id": customer_id,
                    "paid_at": paid_at.isoformat(sep=" "), "amount": money(value),
                    "channel": method if method != "prepaid_card" else "online",
                    "reverses_payment_id": None})
                reversal_at = paid_at + dt.timedelta(days=3)
                if brng.random() < 0.02 and reversal_at.date() <= horizon:
                    out["billing", "payments"].append({
                        "payment_id": f"P{c:07d}{issue_month_index:03d}{2 * k + 1:02d}", "customer_id": customer_id,
                        "paid_at": reversal_at.isoformat(sep=" "), "amount": money(-value),
                        "channel": "bank_debit", "reverses_payment_id": payment_id})
            late = [d for d, _ in unpaid if d < mend]
            if behaviour in ("bad", "late", "partial") and late and brng.random() < 0.5:
                dunning = issue + dt.timedelta(days=25)
                out["billing", "collection_events"].append({
                    "event_id": f"CE{c:09d}{m:03d}1", "customer_id": customer_id, "event_type": "dunning_notice",
                    "event_date": (dunning if dunning <= horizon else issue).isoformat()})
            if behaviour == "bad" and m > 12 and brng.random() < 0.3:
                event_date = min(issue + dt.timedelta(days=10), horizon)
                out["billing", "collection_events"].append({
                    "event_id": f"CE{c:09d}{m:03d}2", "customer_id": customer_id, "event_type": "disconnection",
                    "event_date": event_date.isoformat()})
        del credit

    # Company registry: holding companies owning some customer enterprises (chains, cross-holdings).
    holdings = []
    for h in range(max(2, enterprise_count // 15)):
        enterprise_count += 1
        rng = rng_for(seed, "holding", h)
        holding_id = f"E{enterprise_count:08d}"
        holdings.append(holding_id)
        enterprises.append({
            "enterprise_id": holding_id, "enterprise_name": f"Holding {h}", "uscc": uscc(rng, "330102"),
            "legal_representative_name": f"Holding rep {h}",
            "legal_representative_id_number": resident_id(rng, "330102"),
            "actual_controller_id_number": None, "registered_capital": money(5e8),
            "industry_code": "L", "established_date": "2001-03-15"})
    customer_enterprises = [e["enterprise_id"] for e in enterprises if e["enterprise_id"] not in holdings]
    links_seen = set()
    for i, owned in enumerate(customer_enterprises):
        rng = rng_for(seed, "links", i)
        if rng.random() < 0.35 and holdings:
            owner = rng.choice(holdings)
            stake = rng.choice(["0.6000", "0.5100", "0.3000", "0.2500"])
            links_seen.add((owner, owned))
            out["registry", "ownership_links"].append({
                "owner_enterprise_id": owner, "owned_enterprise_id": owned, "voting_stake": stake,
                "effective_date": "2015-01-01"})
            if i + 1 < len(customer_enterprises) and rng.random() < 0.4:
                nxt = customer_enterprises[i + 1]
                if (owned, nxt) not in links_seen:
                    links_seen.add((owned, nxt))
                    out["registry", "ownership_links"].append({
                        "owner_enterprise_id": owned, "owned_enterprise_id": nxt,
                        "voting_stake": rng.choice(["0.3000", "0.6000"]), "effective_date": "2016-01-01"})
    for i, enterprise in enumerate(enterprises):
        rng = rng_for(seed, "legal", i)
        for m in range(months):
            if rng.random() < 0.01:
                month = month_add(start, m)
                out["registry", "legal_events"].append({
                    "legal_event_id": f"L{i:06d}{m:03d}", "enterprise_id": enterprise["enterprise_id"],
                    "event_type": rng.choice(["supplier_lawsuit", "dishonest_debtor_listed", "tax_violation"]),
                    "event_date": (month + dt.timedelta(days=10)).isoformat(),
                    "amount": money(rng.random() * 1e6)})
    out["registry", "enterprises"] = enterprises
    return {"rows": out, "first_month": f"{start:%Y-%m}", "last_month": f"{last_month:%Y-%m}"}


def contract_tables() -> dict[tuple[str, str], list[str]]:
    spec = yaml.safe_load(CONTRACT.read_text())
    return {(system, table): list(tdef["columns"])
            for system, sdef in spec["systems"].items() for table, tdef in sdef["tables"].items()}


def ensure_schema(pg: psycopg.Connection) -> None:
    pg.execute(loader.LEDGER_DDL)  # the ledger, rejects and manifest totals as ingestion creates them
    for (system, table), columns in contract_tables().items():
        pg.execute(f"create schema if not exists raw_{system}")
        defs = ", ".join(f'"{c}" text' for c in columns)
        pg.execute(f"create table if not exists raw_{system}.{table} ({defs}, "
                   "_load_id bigint not null, _line_number bigint not null) partition by list (_load_id)")


def load_rows(pg: psycopg.Connection, system: str, table: str, rows: list[dict], *,
              first_month: str | None, last_month: str | None, kind: str = "full") -> int:
    """One load: a ledger row, a partition, COPY, attach. Returns the load id."""
    columns = contract_tables()[system, table]
    load_id = pg.execute(
        "insert into ops.load_ledger (system, table_name, file_path, extract_kind, first_month, last_month, "
        "status, started_at) values (%s, %s, %s, %s, %s, %s, 'loaded', now()) returning load_id",
        [system, table, f"dev/{system}/{table}.csv", kind, first_month, last_month]).fetchone()[0]
    part = f"raw_{system}.{table}__load_{load_id}"
    pg.execute(f"create table {part} (like raw_{system}.{table})")
    quoted = ", ".join(f'"{c}"' for c in columns)
    with pg.cursor().copy(f"copy {part} ({quoted}, _load_id, _line_number) from stdin") as copy:
        for line, row in enumerate(rows, start=2):
            copy.write_row([row.get(c) for c in columns] + [load_id, line])
    pg.execute(f"alter table raw_{system}.{table} attach partition {part} for values in ({load_id})")
    # one transaction: the ledger row says 'loaded' only once the partition is attached and committed
    pg.execute("update ops.load_ledger set rows_read = %s, rows_loaded = %s, "
               "rows_rejected = 0, finished_at = clock_timestamp() where load_id = %s",
               [len(rows), len(rows), load_id])
    return load_id


def event_month(system: str, table: str, row: dict) -> str | None:
    column = EVENT_MONTH_COLUMN.get((system, table))
    return row[column][:7] if column else None


def load(url: str, customers: int, months: int, seed: int = 7, start_month: str = "2023-01",
         only_month: str | None = None) -> dict[str, int]:
    """Generate and load. With only_month, load just that month's event rows as an increment."""
    data = generate(customers, months, seed, start_month)
    counts = {}
    with psycopg.connect(url, autocommit=False) as pg:
        ensure_schema(pg)
        for (system, table), rows in sorted(data["rows"].items()):
            if only_month:
                if (system, table) not in EVENT_MONTH_COLUMN:
                    continue
                rows = [r for r in rows if event_month(system, table, r) == only_month]
                load_rows(pg, system, table, rows, first_month=only_month, last_month=only_month,
                          kind="increment")
            else:
                load_rows(pg, system, table, rows, first_month=data["first_month"],
                          last_month=data["last_month"])
            counts[f"{system}.{table}"] = len(rows)
        pg.commit()
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--customers", type=int, default=500)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--start-month", default="2023-01")
    parser.add_argument("--only-month", default=None)
    args = parser.parse_args()
    counts = load(args.url, args.customers, args.months, args.seed, args.start_month, args.only_month)
    for name, count in counts.items():
        print(f"{name:32s} {count:>10,d}")


if __name__ == "__main__":
    main()
