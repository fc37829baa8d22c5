"""Tiny hand-made extract folders for the ingestion tests (CSV files + manifest.json)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from decimal import Decimal, InvalidOperation
from pathlib import Path

from gridcredit.ingestion.contract import load_contract
from gridcredit.ingestion.identifiers import resident_id_check_char, uscc_check_char

Row = dict[str, str | None]


def resident_id(region: str = "110105", birth: str = "19800101", seq: str = "123") -> str:
    first17 = region + birth + seq
    return first17 + resident_id_check_char(first17)


def uscc(body: str = "91110105MA01ABCD1") -> str:
    return body + uscc_check_char(body)


def regions() -> list[Row]:
    return [
        {"region_code": "110105", "region_name": "朝阳区", "city_code": "110100", "city_name": "北京市"},
        {"region_code": "310115", "region_name": "浦东新区", "city_code": "310100", "city_name": "上海市"},
    ]


def customers(n: int = 20) -> list[Row]:
    rows = []
    for i in range(n):
        person = i % 4 != 3
        rows.append({
            "customer_id": f"C{i + 1:09d}",
            "customer_kind": "person" if person else "organisation",
            "customer_name": f"张{'三四五六七'[i % 5]}{i}" if person else f"北京电力用户{i}有限公司",
            "id_number": resident_id(seq=f"{i % 1000:03d}") if person else uscc(f"9111010{i % 10}MA01ABCD1"),
            "phone": f"138{i:08d}" if i % 5 else None,
            "address": f"北京市朝阳区建国路{i}号, 2单元",
            "enterprise_id": None if person else f"E{i:08d}",
            "region_code": "110105",
            "industry_code": "C",
            "customer_type": "residential" if person else "general_commercial_industrial",
            "voltage_level": "0.22kV" if person else "10kV",
            "tariff_code": "R1",
            "settlement_method": "monthly",
            "payment_method": "online",
            "contract_capacity_kva": "8.00",
            "open_date": "2015-03-01",
            "close_date": None,
            "email": f"user{i}@example.cn",
        })
    return rows


def bills(n: int = 30) -> list[Row]:
    return [{
        "bill_id": f"B{i + 1:012d}",
        "customer_id": f"C{i % 20 + 1:09d}",
        "billing_period": "2024-01",
        "issue_date": "2024-02-03",
        "due_date": "2024-02-28",
        "kwh": f"{100 + i}.50",
        "amount": f"{55 + i}.25",
        "tariff_code": "R1",
        "bill_status": "issued",
    } for i in range(n)]


def readings(n: int, meters: int = 1000) -> list[Row]:
    """``n`` valid readings: ``meters`` meters over consecutive days from 2020-01-01."""
    import datetime as dt

    start = dt.date(2020, 1, 1)
    return [{
        "meter_id": f"M{i % meters:010d}",
        "reading_date": (start + dt.timedelta(days=i // meters)).isoformat(),
        "kwh": f"{(i * 37) % 1000}.{i % 100:02d}",
        "quality": "actual" if i % 7 else "estimated",
    } for i in range(n)]


def csv_bytes(header: list[str], rows: list[Row], *, delimiter: str = ",",
              encoding: str = "utf-8", bom: bool = False, newline: str = "\n") -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator=newline)
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else row[c] for c in header])
    data = buffer.getvalue().encode(encoding)
    return (b"\xef\xbb\xbf" + data) if bom else data


def _total(values: list[str | None]) -> str:
    total = Decimal(0)
    for value in values:
        try:
            total += Decimal(value or "")
        except InvalidOperation:
            continue
    return f"{total:.2f}"


def write_extract(directory: Path, tables: dict[str, list[Row]], *, schema_version: str = "1.1",
                  kind: str = "full", encoding: str | None = "utf-8", columns: dict | None = None,
                  raw: dict[str, bytes] | None = None, csv_options: dict | None = None,
                  manifest_patch: dict | None = None) -> dict:
    """Write ``tables`` ({"billing.customers": rows}) and a manifest that matches them.

    ``columns`` overrides a file's header (order or set), ``raw`` replaces a file's bytes after
    the manifest figures were computed from the rows (the manifest still describes the rows
    unless ``raw`` bytes are the source of truth: see ``rehash``). ``manifest_patch`` updates
    file entries: {"billing.customers": {"rows": 3}}.
    """
    contract = load_contract()
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "truth").mkdir(exist_ok=True)
    (directory / "truth" / "labels.csv").write_text("customer_id,defaulted\nC000000001,1\n")
    files = {}
    for qualified, rows in tables.items():
        system, name = qualified.split(".")
        spec = contract.table(system, name)
        header = (columns or {}).get(qualified) or [
            c.name for c in spec.columns if not c.optional_in(schema_version)
        ]
        data = csv_bytes(header, rows, **(csv_options or {}).get(qualified, {}))
        if raw and qualified in raw:
            data = raw[qualified]
        path = directory / spec.file
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        entry = {"system": system, "table": name, "rows": len(rows),
                 "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
        if spec.totals:
            entry["totals"] = {c: _total([r.get(c) for r in rows]) for c in spec.totals}
        entry.update((manifest_patch or {}).get(qualified, {}))
        files[spec.file] = entry
    manifest = {"schema_version": schema_version, "kind": kind, "first_month": "2024-01",
                "last_month": "2024-03", "generated_by": "tests", "files": files}
    if encoding is not None:
        manifest["encoding"] = encoding
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False))
    return manifest
