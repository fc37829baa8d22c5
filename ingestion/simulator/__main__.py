"""``python -m gridcredit.ingestion.simulator --customers N --months M --seed S --out DIR``."""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

from . import generate


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m gridcredit.ingestion.simulator",
                                description="Write a simulated utility source extract.")
    p.add_argument("--customers", type=int, default=2000)
    p.add_argument("--months", type=int, default=24)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--start-month", default="2023-01")
    p.add_argument("--from-month", default=None)
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args(argv)
    t0 = time.perf_counter()

    def progress(msg: str, rows: int) -> None:
        if not a.quiet:
            print(f"{time.perf_counter() - t0:8.1f}s  {msg}  {rows:,} rows", file=sys.stderr)

    m = generate(a.out, a.customers, a.months, a.seed, start_month=a.start_month,
                 from_month=a.from_month, progress=progress)
    rows = sum(f["rows"] for f in m["files"].values())
    size = sum(f["bytes"] for f in m["files"].values())
    ru = resource.getrusage(resource.RUSAGE_SELF)
    print(f"{m['kind']} extract {m['first_month']}..{m['last_month']}: {rows:,} rows, "
          f"{size / 1e6:,.1f} MB in {time.perf_counter() - t0:.1f}s "
          f"(CPU {ru.ru_utime + ru.ru_stime:.1f}s), peak RSS {ru.ru_maxrss / 1024:,.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
