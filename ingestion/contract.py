"""The source extract contract (``contract.yaml``) as typed objects for ingestion.

One definition drives everything the loader does: the raw table columns, the header check, the
Python validation rules (``validation.py``) and their vectorised form (``arrow_validation.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import yaml

CONTRACT_PATH = Path(__file__).resolve().parent / "contract.yaml"

TYPES = ("text", "integer", "numeric", "date", "timestamp", "month")
CHECKS = ("resident_id", "uscc", "resident_id_or_uscc", "phone_cn")

# Tables loaded before all others (reference data the rest points at). The contract has no flag for
# this yet; a table may also declare ``reference: true`` in contract.yaml.
REFERENCE_TABLES = frozenset({("billing", "supply_regions"), ("billing", "tariffs")})


class ContractError(ValueError):
    """contract.yaml is malformed."""


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    type: str = "text"
    required: bool = False
    allowed: tuple[str, ...] | None = None
    min: Decimal | str | None = None  # Decimal for integer/numeric, 'YYYY-MM-DD' for date
    max: Decimal | str | None = None
    pattern: str | None = None
    check: str | None = None
    personal: bool = False
    since: str | None = None

    def optional_in(self, schema_version: str) -> bool:
        """True if a file of ``schema_version`` may omit this column (it was added later)."""
        return self.since is not None and version_key(schema_version) < version_key(self.since)


@dataclass(frozen=True)
class TableSpec:
    system: str
    name: str
    file: str
    columns: tuple[ColumnSpec, ...]
    key: tuple[str, ...] = ()
    totals: tuple[str, ...] = ()
    totals_month: str | None = None
    reference: bool = False
    description: str = field(default="", compare=False)

    @property
    def qualified(self) -> str:
        return f"{self.system}.{self.name}"

    @property
    def raw_schema(self) -> str:
        return f"raw_{self.system}"

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)

    def column(self, name: str) -> ColumnSpec:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)


@dataclass(frozen=True)
class Contract:
    schema_versions_supported: tuple[str, ...]
    current_schema_version: str
    tables: tuple[TableSpec, ...]  # contract order

    def by_file(self) -> dict[str, TableSpec]:
        return {table.file: table for table in self.tables}

    def table(self, system: str, name: str) -> TableSpec:
        for table in self.tables:
            if table.system == system and table.name == name:
                return table
        raise KeyError(f"{system}.{name}")

    def load_order(self) -> list[TableSpec]:
        """Reference tables first, then the rest, each group in contract order."""
        return [t for t in self.tables if t.reference] + [t for t in self.tables if not t.reference]


def version_key(version: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in str(version).split("."))
    except ValueError:
        return (-1,)


def _bound(column: str, kind: str, value: Any) -> Decimal | str | None:
    if value is None:
        return None
    if kind in ("integer", "numeric"):
        return Decimal(str(value))
    if kind == "date":
        return str(value)
    raise ContractError(f"column {column}: min/max only for integer, numeric or date columns")


def _column(name: str, rules: dict[str, Any]) -> ColumnSpec:
    kind = rules.get("type", "text")
    if kind not in TYPES:
        raise ContractError(f"column {name}: unknown type {kind!r}")
    check = rules.get("check")
    if check is not None and check not in CHECKS:
        raise ContractError(f"column {name}: unknown check {check!r}")
    allowed = rules.get("allowed")
    return ColumnSpec(
        name=name,
        type=kind,
        required=bool(rules.get("required", False)),
        allowed=tuple(str(v) for v in allowed) if allowed is not None else None,
        min=_bound(name, kind, rules.get("min")),
        max=_bound(name, kind, rules.get("max")),
        pattern=rules.get("pattern"),
        check=check,
        personal=bool(rules.get("personal", False)),
        since=str(rules["since"]) if rules.get("since") is not None else None,
    )


def parse_contract(raw: dict[str, Any]) -> Contract:
    tables = []
    for system, system_def in raw["systems"].items():
        for name, table_def in system_def["tables"].items():
            columns = tuple(_column(c, dict(r or {})) for c, r in table_def["columns"].items())
            names = {c.name for c in columns}
            month = table_def.get("totals_month")
            for listed in (*table_def.get("key", ()), *table_def.get("totals", ()), *([month] if month else [])):
                if listed not in names:
                    raise ContractError(f"{system}.{name}: key/totals column {listed} not a column")
            tables.append(TableSpec(
                system=system,
                name=name,
                file=table_def["file"],
                columns=columns,
                key=tuple(table_def.get("key", ())),
                totals=tuple(table_def.get("totals", ())),
                totals_month=month,
                reference=bool(table_def.get("reference", (system, name) in REFERENCE_TABLES)),
                description=system_def.get("description", ""),
            ))
    return Contract(
        schema_versions_supported=tuple(str(v) for v in raw["schema_versions_supported"]),
        current_schema_version=str(raw["current_schema_version"]),
        tables=tuple(tables),
    )


@cache
def load_contract(path: Path = CONTRACT_PATH) -> Contract:
    with Path(path).open(encoding="utf-8") as handle:
        return parse_contract(yaml.safe_load(handle))
