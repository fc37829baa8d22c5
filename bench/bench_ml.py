"""ML benchmark: training time and scoring throughput (rows/s) per model at a given size.

A script, not a test (`make bench-ml`). It writes a synthetic feature/label mart of
CUSTOMERS x MONTHS (gridcredit.ml.synthetic: the shape of marts_ml) into its own database on the
warehouse server, then runs `gridcredit score` twice:

1. first run: every model trains out of time, is evaluated, promoted, and scores the backfill
   window (12 as-of months) -> training seconds and scoring rows/s;
2. `--rescore` run with the same inputs: the stored models are reused (same run key), so it
   measures scoring and publishing alone.

Usage: python bench/bench_ml.py --customers 100000 --months 36 [--out bench/results/ml-latest.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from gridcredit import warehouse
from gridcredit.ml.scoring import score_all
from gridcredit.ml.synthetic import make_marts, write_marts

RESULTS = Path(__file__).resolve().parent / "results"


def model_figures(summary: dict) -> dict[str, dict]:
    """Per model of a ``score_all`` summary: training seconds, scoring rows/s and the headline metric."""
    models = {}
    for model, outcome in summary["models"].items():
        timings = outcome.get("timings", {})
        rows = sum(outcome.get("rows", {}).values())
        score_s = timings.get("score_s", 0.0)
        models[model] = {
            "status": outcome["status"],
            "trained": outcome["trained"],
            "training_seconds": timings.get("fit_s"),
            "evaluation_seconds": timings.get("evaluate_s"),
            "scoring_seconds": score_s,
            "rows_scored": rows,
            "scoring_rows_per_second": round(rows / score_s) if score_s else None,
            "staging_seconds": timings.get("stage_s"),
            "total_seconds": round(outcome.get("seconds", 0.0), 2),
            "headline_metric": {
                k: outcome["metrics"][k]
                for k in ("auc", "precision_at_capacity", "mae_ratio")
                if k in (outcome.get("metrics") or {})
            },
        }
    return models


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--months", type=int, default=36)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS / "ml-latest.json")
    parser.add_argument("--keep", action="store_true", help="Keep the benchmark database.")
    parser.add_argument("--first-run-only", action="store_true", help="Skip the --rescore run (busy machines).")
    args = parser.parse_args()

    conn = warehouse.ensure_running()
    name = f"bench_ml_{uuid.uuid4().hex[:8]}"
    admin = conn.with_dbname("postgres")
    with psycopg.connect(admin.url, autocommit=True) as pg:
        pg.execute(f'create database "{name}"')
    target = conn.with_dbname(name)
    result: dict = {
        "customers": args.customers,
        "months": args.months,
        "seed": args.seed,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_at_start": os.getloadavg(),
        },
    }
    try:
        began = time.perf_counter()
        features, labels = make_marts(args.customers, args.months, args.seed)
        with psycopg.connect(target.url) as pg:
            write_marts(pg, features, labels)
        result["mart_rows"] = len(features)
        result["mart_seconds"] = round(time.perf_counter() - began, 1)
        print(f"marts: {len(features):,} rows in {result['mart_seconds']} s", flush=True)
        del features, labels

        for run in ("first_run",) if args.first_run_only else ("first_run", "rescore_run"):
            began = time.perf_counter()
            summary = score_all(target, rescore=(run == "rescore_run"))
            seconds = time.perf_counter() - began
            models = model_figures(summary)
            result[run] = {
                "seconds": round(seconds, 1),
                "load_average_at_end": os.getloadavg(),
                "models": models,
                "published_rows": summary["published_rows"],
            }
            _write(args.out, result)  # each run's figures survive a later interruption
            print(f"{run}: {seconds:.1f} s", flush=True)
            for model, m in models.items():
                print(
                    f"  {model:22s} train {m['training_seconds'] or 0:7.1f} s   score {m['rows_scored']:>10,} rows "
                    f"in {m['scoring_seconds'] or 0:6.1f} s = {m['scoring_rows_per_second'] or 0:>9,} rows/s"
                )
    finally:
        if not args.keep:
            with psycopg.connect(admin.url, autocommit=True) as pg:
                pg.execute(f'drop database if exists "{name}" with (force)')
    result["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    _write(args.out, result)
    print(f"wrote {args.out}")


def _write(out: Path, result: dict) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
