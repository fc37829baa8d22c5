"""Chart-data latency per Superset dashboard (not a test): `make bench-bi`.

Against the running, provisioned Superset of this installation (`gridcredit bi up`), for every
dashboard of superset/assets: each chart's data is requested through the chart data API
(``GET /api/v1/chart/<id>/data/?force=true``: no cache, the warehouse answers every time) ``--runs``
times, round-robin over the charts so that no chart is measured warm while others wait. Reports p50
and p95 per dashboard (over all its chart requests) and per chart, the slowest chart, the customer
count of the warehouse measured, machine and git commit, to ``bench/results/bi-<date>.json`` and
``bench/results/bi-latest.json``. Target (issue 6): p95 under 1 s per dashboard at 100k customers.

Then (``--explain``, the default) the database side alone: the SQL Superset generates for each chart
(``?type=query``) is run under ``EXPLAIN (ANALYZE)`` ``--explain-runs`` times directly on the warehouse;
the best execution time, the plan's top node, the table rows its scans read and the shared buffers it
touched are stored per chart (rows read that grow with customers x months mark a chart that will not
scale). On a loaded machine most of a request is Superset's own work: this part says which charts the
warehouse makes slow.

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


def _plan_top(node: dict) -> str:
    """The plan's first scan or index node under Limit/Sort/Aggregate wrappers, e.g. 'Index Scan on t'."""
    while node.get("Node Type") in {"Limit", "Sort", "Incremental Sort", "Aggregate", "Gather Merge", "Gather"} and (
        node.get("Plans")
    ):
        node = node["Plans"][0]
    relation = node.get("Relation Name")
    return node["Node Type"] + (f" on {relation}" if relation else "")


SCAN_NODES = {"Seq Scan", "Index Scan", "Index Only Scan", "Bitmap Heap Scan", "Tid Scan"}


def _rows_read(node: dict) -> int:
    """Table rows the plan's scan nodes read (returned + removed by a filter, times loops): the figure that
    shows whether a chart's work grows with customers x months (a seq scan) or stays bounded (a LIMIT on an
    index in the chart's order)."""
    own = 0
    if node.get("Node Type") in SCAN_NODES:
        own = (node.get("Actual Rows", 0) + node.get("Rows Removed by Filter", 0)) * node.get("Actual Loops", 1)
    return int(own + sum(_rows_read(child) for child in node.get("Plans", [])))


def explain_charts(api, conn, ids: dict, charts: dict, dashboards: dict, runs: int) -> dict[str, dict]:
    """Best-of-``runs`` EXPLAIN ANALYZE execution time (ms) of each chart's generated SQL, per dashboard."""
    out: dict[str, dict] = {}
    with psycopg.connect(conn.url, autocommit=True) as pg:
        for slug, dashboard in sorted(dashboards.items()):
            members = [
                node["meta"]["uuid"]
                for node in dashboard["position"].values()
                if isinstance(node, dict) and node.get("type") == "CHART"
            ]
            per_chart = {}
            for uuid in members:
                queries = api.request("GET", f"/api/v1/chart/{ids[uuid]}/data/?type=query")["result"]
                best, top, rows_read, buffers = None, "", 0, 0
                for query in queries:
                    statement = query["query"].strip().rstrip(";")
                    timings = []
                    for _ in range(runs):
                        plan = pg.execute("explain (analyze, buffers, format json) " + statement).fetchone()[0][0]
                        timings.append(plan["Execution Time"] + plan.get("Planning Time", 0.0))
                    best = min(timings) + (best or 0.0)
                    top = top or _plan_top(plan["Plan"])
                    rows_read += _rows_read(plan["Plan"])
                    buffers += plan["Plan"].get("Shared Hit Blocks", 0) + plan["Plan"].get("Shared Read Blocks", 0)
                per_chart[charts[uuid]["slice_name"]] = {
                    "best_ms": round(best or 0.0, 1),
                    "plan": top,
                    "rows_read": rows_read,
                    "shared_buffers": buffers,
                }
            slowest = max(per_chart.items(), key=lambda item: item[1]["best_ms"])
            out[slug] = {"max_ms": slowest[1]["best_ms"], "slowest_chart": slowest[0], "per_chart": per_chart}
            name, item = slowest
            print(f"{slug:28s} database side: slowest {name} {item['best_ms']:.1f} ms ({item['plan']})")
            most = max(per_chart.items(), key=lambda item: item[1]["rows_read"])
            name, item = most
            print(f"{'':28s} most rows read: {name} {item['rows_read']:,} rows, {item['shared_buffers']:,} buffers")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="requests per chart")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--note", default="", help="free text stored with the figures (e.g. what else ran)")
    parser.add_argument("--dashboards", default="", help="comma-separated slugs to measure (default: all)")
    parser.add_argument(
        "--explain", action=argparse.BooleanOptionalAction, default=True, help="also time each chart's SQL alone"
    )
    parser.add_argument("--explain-runs", type=int, default=3, help="EXPLAIN ANALYZE runs per chart (best kept)")
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
    if args.dashboards:
        dashboards = {slug: dashboards[slug] for slug in args.dashboards.split(",")}
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

    database_side = explain_charts(api, conn, ids, charts, dashboards, args.explain_runs) if args.explain else {}
    for slug, items in database_side.items():
        results[slug]["database_ms"] = items

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
