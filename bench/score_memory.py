"""Peak memory of `gridcredit score` by step: where the score stage's RSS goes.

Runs ``score_all`` on the configured warehouse (GRIDCREDIT_HOME / WAREHOUSE_URL) in this process
and records, around each step (feature load, each model's plan / fit / evaluate / score, monitoring,
write-back), the process's peak RSS: Linux's VmHWM, reset before each step through
``/proc/self/clear_refs`` and carried up to the enclosing steps. A script, not a test.

Usage: python bench/score_memory.py [--retrain] [--rescore] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import time
from pathlib import Path


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) * 1024
    return 0


class StepPeaks:
    """Wraps functions; each call records RSS before/after and its peak (nested steps included)."""

    def __init__(self):
        self.records: list[dict] = []
        self._open: list[list[int]] = []

    def wrap(self, owner, name: str, label: str) -> None:
        function = getattr(owner, name)

        @functools.wraps(function)
        def measured(*args, **kwargs):
            before, high = _status("VmRSS"), _status("VmHWM")
            for frame in self._open:
                frame[0] = max(frame[0], high)
            Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
            frame = [0]
            self._open.append(frame)
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self._open.pop()
                frame[0] = max(frame[0], _status("VmHWM"))
                for outer in self._open:
                    outer[0] = max(outer[0], frame[0])
                self.records.append(
                    {
                        "step": label,
                        "model": args[0] if label == "run_model" else None,
                        "rss_before_mib": before >> 20,
                        "peak_rss_mib": frame[0] >> 20,
                        "rss_after_mib": _status("VmRSS") >> 20,
                        "seconds": round(time.perf_counter() - started, 2),
                    }
                )

        setattr(owner, name, measured)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--retrain", action="store_true")
    parser.add_argument("--rescore", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    from gridcredit import warehouse
    from gridcredit.ml import features, scoring, writeback

    steps = StepPeaks()
    steps.wrap(features, "read_sql_frame", "read_sql_frame")
    scoring.read_sql_frame = features.read_sql_frame
    for name in ("load_dataset", "open_dataset"):  # the whole read before ADR 0097, on demand after
        if hasattr(scoring, name):
            steps.wrap(scoring, name, name)
    if hasattr(features, "MartSource"):
        steps.wrap(features.MartSource, "read", "read_months")
    for name in ("run_model", "stage_monitoring", "score_all"):
        steps.wrap(scoring, name, name)
    steps.wrap(writeback.BuildArea, "stage", "write_back_stage")
    steps.wrap(writeback.BuildArea, "prepare", "write_back_prepare")
    steps.wrap(writeback.BuildArea, "publish", "write_back_publish")
    for model, module in scoring.MODULES.items():
        for step in ("plan", "fit", "evaluate", "score"):
            steps.wrap(module, step, f"{model}.{step}")

    conn = warehouse.ensure_running()
    started = time.perf_counter()
    summary = scoring.score_all(conn, rescore=args.rescore, retrain=args.retrain)
    result = {
        "seconds": round(time.perf_counter() - started, 1),
        "load_average_at_end": os.getloadavg(),
        "steps": steps.records,
        "timings": summary["timings"],
    }
    for r in steps.records:
        if r["step"] in ("load_dataset", "open_dataset", "run_model", "stage_monitoring", "score_all"):
            print(
                f"{r['step']:18s} {r['model'] or '':22s} RSS {r['rss_before_mib']:6d} -> peak {r['peak_rss_mib']:6d}"
                f" -> {r['rss_after_mib']:6d} MiB  {r['seconds']:8.1f} s"
            )
    if args.out:
        args.out.write_text(json.dumps(result, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
