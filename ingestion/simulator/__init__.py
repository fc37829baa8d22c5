"""Utility source simulator: writes source extracts that follow ``ingestion/contract.yaml``.

Public API: :func:`generate`. See ``README.md`` in this folder.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from ..contract import load_contract
from .engine import Simulation
from .writer import PlainCsv, TableWriter, month_index, month_str

__all__ = ["GENERATOR_NAME", "TRUTH_FILES", "generate"]

GENERATOR_NAME = "gridcredit-simulator"

# Latent truth for evaluation only (never ingested): file -> columns, and whether it is written
# month by month (filtered in increments) or as the state at the end of the extract.
TRUTH_FILES: dict[str, tuple[tuple[str, ...], bool]] = {
    "customer_months": (
        ("customer_id", "month", "financial_health", "is_thief", "theft_active"), True),
    "enterprise_months": (("enterprise_id", "month", "financial_health", "design_group"), True),
    "bill_status_changes": (("bill_id", "bill_status", "change_month"), True),
    "thieves": (("customer_id", "theft_type", "drop_fraction", "first_theft_month",
                 "last_confirmed_month", "theft_days"), False),
    "enterprise_control": (("enterprise_id", "controlling_enterprise_id",
                            "ultimate_controller_enterprise_id", "design_group",
                            "is_holding_company"), False),
    "industry_downturns": (("industry_code", "start_month", "bottom_month", "end_month",
                            "depth"), False),
}


class _Writers:
    def __init__(self, t: dict[str, TableWriter], truth: dict[str, PlainCsv]):
        self.t = t
        self.truth = truth

    def rows(self) -> int:
        return sum(w.rows for w in self.t.values())


def generate(
    out_dir: Path,
    customers: int,
    months: int,
    seed: int,
    start_month: str = "2023-01",
    from_month: str | None = None,
    progress: Callable[[str, int], None] | None = None,
) -> dict:
    """Simulate a utility and write one source extract.

    Parameters
    ----------
    out_dir : Path
        Folder of the extract; each contract table is written at its ``file`` path, plus
        ``manifest.json`` and ``truth/`` (latent truth, evaluation only). Existing files of the
        same names are overwritten; other files are left alone.
    customers : int
        Number of supply accounts open at the start month (new accounts arrive every month).
    months : int
        Number of months simulated, from ``start_month``.
    seed : int
        Seed (non-negative). Same arguments give byte-identical files.
    start_month : str
        First simulated month, ``YYYY-MM``.
    from_month : str or None
        ``None`` for a full extract; otherwise ``YYYY-MM`` within the simulated months: the
        history is simulated from ``start_month`` but only rows dated (created or changed) in
        months >= ``from_month`` are written (``kind`` ``"increment"``).
    progress : callable, optional
        Called as ``progress(message, rows_written_so_far)`` after each month and at the end.

    Returns
    -------
    dict
        The manifest, also written to ``out_dir / "manifest.json"``.
    """
    for name, value in (("customers", customers), ("months", months), ("seed", seed)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if customers < 1:
        raise ValueError(f"customers must be >= 1, got {customers}")
    if months < 1:
        raise ValueError(f"months must be >= 1, got {months}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    start_mi = month_index(start_month)
    if not 1990 * 12 <= start_mi <= 2090 * 12:
        raise ValueError(f"start_month must lie between 1990-01 and 2090-01, got {start_month}")
    last_mi = start_mi + months - 1
    from_k = None
    if from_month is not None:
        fmi = month_index(from_month)
        if not start_mi <= fmi <= last_mi:
            raise ValueError(f"from_month must lie between {month_str(start_mi)} and "
                             f"{month_str(last_mi)}, got {from_month}")
        from_k = fmi - start_mi
    contract = load_contract()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    tables: dict[str, TableWriter] = {}
    truth: dict[str, PlainCsv] = {}
    try:
        for spec in contract.tables:
            tables[spec.name] = TableWriter(out_dir, spec, from_k)
        for name, (cols, monthly) in TRUTH_FILES.items():
            truth[name] = PlainCsv(out_dir / "truth" / f"{name}.csv", cols,
                                   from_k if monthly else None)
        w = _Writers(tables, truth)
        sim = Simulation(seed, customers, start_mi)
        sim.w = w
        sim.init_population()
        for k in range(months):
            sim.step(k)
            if progress is not None:
                progress(month_str(start_mi + k), w.rows())
        sim.finish(months - 1)
    except BaseException:
        for x in (*tables.values(), *truth.values()):
            try:
                x.close()
            except Exception:  # noqa: BLE001 - best effort while failing anyway
                pass
        raise
    files = {tables[s.name].spec.file: tables[s.name].close() for s in contract.tables}
    for x in truth.values():
        x.close()
    manifest = {
        "schema_version": contract.current_schema_version,
        "generator": GENERATOR_NAME,
        "seed": seed,
        "customers": customers,
        "months": months,
        "start_month": month_str(start_mi),
        "first_month": month_str(start_mi if from_k is None else start_mi + from_k),
        "last_month": month_str(last_mi),
        "kind": "full" if from_k is None else "increment",
        "encoding": "utf-8",
        "files": files,
    }
    (out_dir / "manifest.json").write_text(
        json.dumps(manifest, sort_keys=True, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if progress is not None:
        progress("done", w.rows())
    return manifest
