"""Read the source extract contract (``ingestion/contract.yaml``) for the simulator."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

CONTRACT_PATH = Path(__file__).resolve().parent.parent / "contract.yaml"


@dataclass(frozen=True)
class TableSpec:
    """One table of the contract."""

    system: str
    table: str
    file: str
    columns: tuple[str, ...]
    column_rules: dict[str, dict[str, Any]] = field(hash=False, compare=False)
    key: tuple[str, ...] = ()
    totals: tuple[str, ...] = ()


@dataclass(frozen=True)
class Contract:
    """The parsed contract: schema version and tables keyed by ``(system, table)``."""

    current_schema_version: str
    tables: dict[tuple[str, str], TableSpec] = field(hash=False, compare=False)

    def table(self, system: str, table: str) -> TableSpec:
        return self.tables[(system, table)]


@lru_cache(maxsize=4)
def load_contract(path: str | Path = CONTRACT_PATH) -> Contract:
    """Load and parse the contract YAML (cached)."""
    with open(path, encoding="utf-8") as f:
        raw = yaml.safe_load(f)
    tables: dict[tuple[str, str], TableSpec] = {}
    for system, sys_def in raw["systems"].items():
        for table, tdef in sys_def["tables"].items():
            cols = tdef["columns"]
            tables[(system, table)] = TableSpec(
                system=system,
                table=table,
                file=tdef["file"],
                columns=tuple(cols),
                column_rules={c: dict(r or {}) for c, r in cols.items()},
                key=tuple(tdef.get("key", ())),
                totals=tuple(tdef.get("totals", ())),
            )
    return Contract(current_schema_version=str(raw["current_schema_version"]), tables=tables)
