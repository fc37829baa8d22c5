"""Chart-data latency per Superset dashboard (not a test): `make bench-bi`.

Against the running, provisioned Superset of this installation (`gridcredit bi up`), for every
dashboard of superset/assets: each chart's data is requested through the chart data API
(``GET /api/v1/chart/<id>/data/?force=true``: no cache, the warehouse answers every time) ``--runs``
times, round-robin over the charts so that no chart is measured warm while others wait. Reports p50
and p95 per dashboard (over all its chart requests) and per chart, the slowest chart, the customer
count of the warehouse measured, machine and git commit, to ``bench/results/bi-<date>.json`` and
``bench/results/bi-latest.json``. Target (issue 6): p95 under 1 s per dashboard at 100k customers.

    gridcredit bi up && .venv/bin/python bench/bench_bi.py --runs 20
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psycopg

from gridcredit import warehouse

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
TARGET_P95_SECONDS = 1.0


def _load_bi():
    try:
        return importlib.import_module("gridcredit.bi")
    except ImportError:
        spec = importlib.util.spec_from_file_location("gridcredit_bi", ROOT / "superset" / "gridcredit_bi.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["gridcredit_bi"] = module
        spec.loader.exec_module(module)
        return module


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def git_commit() -> str:
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout
        return commit + ("+dirty" if dirty.strip() else "")
    except OSError:
        return "unknown"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="requests per chart")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--note", default="", help="free text stored with the figures (e.g. what else ran)")
    args = parser.parse_args()
    bi = _load_bi()

    status = bi.bi_status()
    if not status["healthy"]:
        print(f"Superset is not answering at {status['url']}: run `gridcredit bi up` first", file=sys.stderr)
        return 1
    conn = warehouse.current()
    with psycopg.connect(conn.url) as pg:
        customers = pg.execute("select count(*) from marts_core.dim_customers").fetchone()[0]
        months = pg.execute("select count(distinct month_start_date) from marts_core.fct_customer_months").fetchone()[0]

    bundle = bi.load_assets()
    charts = {doc["uuid"]: doc for path, doc in bundle.items() if path.startswith("charts/")}
    dashboards = {doc["slug"]: doc for path, doc in bundle.items() if path.startswith("dashboards/")}
    api = bi.client()
    ids = {
        chart["uuid"]: chart["id"]
        for chart in api.request("GET", "/api/v1/chart/?q=(columns:!(id,uuid),page_size:1000)")["result"]
    }

    load_before = os.getloadavg()
    results = {}
    for slug, dashboard in sorted(dashboards.items()):
        members = [
            node["meta"]["uuid"]
            for node in dashboard["position"].values()
            if isinstance(node, dict) and node.get("type") == "CHART"
        ]
        timings: dict[str, list[float]] = {uuid: [] for uuid in members}
        rows: dict[str, int] = {}
        for _ in range(args.runs):
            for uuid in members:
                started = time.perf_counter()
                result = api.request("GET", f"/api/v1/chart/{ids[uuid]}/data/?force=true")["result"]
                timings[uuid].append(time.perf_counter() - started)
                rows[uuid] = sum(query["rowcount"] for query in result)
        everything = [seconds for values in timings.values() for seconds in values]
        per_chart = {
            charts[uuid]["slice_name"]: {
                "p50_s": round(percentile(values, 0.5), 4),
                "p95_s": round(percentile(values, 0.95), 4),
                "rows": rows[uuid],
            }
            for uuid, values in timings.items()
        }
        slowest = max(per_chart.items(), key=lambda item: item[1]["p95_s"])
        results[slug] = {
            "title": dashboard["dashboard_title"],
            "charts": len(members),
            "requests": len(everything),
            "p50_s": round(percentile(everything, 0.5), 4),
            "p95_s": round(percentile(everything, 0.95), 4),
            "mean_s": round(statistics.fmean(everything), 4),
            "slowest_chart": {"name": slowest[0], **slowest[1]},
            "meets_target": percentile(everything, 0.95) < TARGET_P95_SECONDS,
            "per_chart": per_chart,
        }
        print(
            f"{slug:28s} charts={len(members):2d} p50={results[slug]['p50_s']:.3f}s "
            f"p95={results[slug]['p95_s']:.3f}s slowest={slowest[0]} ({slowest[1]['p95_s']:.3f}s)"
        )

    report = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "machine": {
            "cores": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "warehouse": {"customers": customers, "months": months},
        # The machines are shared: the load average says how much else competed for the 2 cores.
        "load_average": {"before": [round(x, 2) for x in load_before], "after": [round(x, 2) for x in os.getloadavg()]},
        "note": args.note,
        "superset": {"url": status["url"], "workers": bi.bi_settings().workers, "cache": "none (force=true)"},
        "runs_per_chart": args.runs,
        "target_p95_s": TARGET_P95_SECONDS,
        "all_dashboards_meet_target": all(item["meets_target"] for item in results.values()),
        "dashboards": results,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(report, indent=2, ensure_ascii=False) + "\n"
    (args.out / f"bi-{dt.date.today().isoformat()}.json").write_text(text)
    (args.out / "bi-latest.json").write_text(text)
    print(f"wrote {args.out / 'bi-latest.json'} ({customers:,} customers x {months} months)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
