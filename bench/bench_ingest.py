"""Ingestion throughput against plain COPY (not a test).

In one run, on the same warehouse:

(a) baseline: for every file of the extract, an empty table of the same definition (all contract
    columns as text + ``_load_id`` + ``_line_number``; not partitioned, no constraints), created
    and committed beforehand, then ``COPY ... FROM STDIN (FORMAT csv, HEADER true)`` of the file
    streamed in 1 MiB chunks, one transaction per file;
(b) ``gridcredit ingest`` (``ingest_directory``) into a fresh database.

Writes rows/s of both, the ratio (b)/(a), the CPU seconds of each side (client and server,
:class:`CpuSampler`) and their ratio, per-table figures, machine and git commit to
``bench/results/ingest-<date>.json`` and ``bench/results/ingest-latest.json``. On a saturated
machine the wall ratio tends to the CPU ratio; on an idle one the client's threads and the server
overlap on the two cores.

    .venv/bin/python bench/bench_ingest.py --customers 2000 --months 12
    .venv/bin/python bench/bench_ingest.py --extract data/demo-3000x36-s42

Without ``--extract`` the extract comes from the simulator (``gridcredit.ingestion.simulator``)
when it is available, else from a built-in synthetic generator (customers, bills, readings).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import random
import resource
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psutil
import psycopg
from rich.console import Console

from gridcredit import warehouse
from gridcredit.ingestion.contract import load_contract
from gridcredit.ingestion.identifiers import resident_id_check_char
from gridcredit.ingestion.loader import (
    CHUNK,
    detect_encoding,
    ingest_directory,
    normalise_encoding,
    read_header,
)

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


# -- data --------------------------------------------------------------------------------------
def synthetic_extract(out: Path, customers: int, months: int, seed: int = 42) -> None:
    """customers.csv, bills.csv (one per customer and month), readings.csv (10 per month)."""
    rnd = random.Random(seed)
    contract = load_contract()
    out.mkdir(parents=True, exist_ok=True)
    files = {}

    def write(qualified: str, lines) -> None:
        system, name = qualified.split(".")
        spec = contract.table(system, name)
        path = out / spec.file
        path.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        rows = size = 0
        totals = {c: 0 for c in spec.totals}
        index = {c: i for i, c in enumerate(spec.column_names)}
        with path.open("wb") as handle:
            def emit(data: bytes) -> None:
                nonlocal size
                handle.write(data)
                digest.update(data)
                size += len(data)

            emit((",".join(spec.column_names) + "\n").encode())
            batch = []
            for fields in lines:
                for c in totals:
                    totals[c] += round(float(fields[index[c]]) * 100)
                batch.append(",".join(fields))
                rows += 1
                if len(batch) == 10000:
                    emit(("\n".join(batch) + "\n").encode())
                    batch = []
            if batch:
                emit(("\n".join(batch) + "\n").encode())
        entry = {"system": system, "table": name, "rows": rows, "sha256": digest.hexdigest(),
                 "bytes": size}
        if totals:
            entry["totals"] = {c: f"{v // 100}.{v % 100:02d}" for c, v in totals.items()}
        files[spec.file] = entry

    def customer_lines():
        for i in range(customers):
            first17 = f"110105{1950 + i % 50}0{1 + i % 9}1{i % 10}{i % 1000:03d}"
            rid = first17 + resident_id_check_char(first17)
            yield [f"C{i:09d}", "person", f"张{i % 97}", rid, f"13{8 + i % 2}{i:08d}",
                   f"北京市朝阳区{i}号", "", "110105", "C", "residential", "0.22kV", "R1",
                   "monthly", "online", "8.00", "2015-03-01", "", f"u{i}@example.cn"]

    def bill_lines():
        n = 0
        for m in range(months):
            period = f"{2021 + m // 12}-{m % 12 + 1:02d}"
            for i in range(customers):
                n += 1
                cents = rnd.randrange(1000, 90000)
                yield [f"B{n:012d}", f"C{i:09d}", period, f"{period}-03", f"{period}-25",
                       f"{cents // 50}.00", f"{cents // 100}.{cents % 100:02d}", "R1", "issued"]

    def reading_lines():
        for m in range(months):
            for day in range(1, 11):
                date = f"{2021 + m // 12}-{m % 12 + 1:02d}-{day:02d}"
                for i in range(customers):
                    cents = rnd.randrange(0, 5000)
                    yield [f"M{i:010d}", date, f"{cents // 100}.{cents % 100:02d}",
                           "actual" if cents % 9 else "estimated"]

    write("billing.customers", customer_lines())
    write("billing.bills", bill_lines())
    write("metering.readings", reading_lines())
    manifest = {"schema_version": "1.1", "kind": "full", "encoding": "utf-8",
                "first_month": "2021-01", "last_month": f"{2021 + (months - 1) // 12}-{(months - 1) % 12 + 1:02d}",
                "files": files}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))


def make_extract(out: Path, customers: int, months: int, seed: int) -> str:
    try:
        from gridcredit.ingestion.simulator import generate  # type: ignore[attr-defined]
    except ImportError:
        synthetic_extract(out, customers, months, seed)
        return "synthetic (bench_ingest.synthetic_extract)"
    generate(out, customers=customers, months=months, seed=seed)
    return "simulator"


# -- measurements ------------------------------------------------------------------------------
class CpuSampler:
    """CPU seconds (user + system) of this process and of the database server over a block.

    The server's figure is the sum, over the postmaster and every process under it (backends,
    checkpointer, WAL writer, ...), of the CPU each process used while the block ran: every process
    is read from ``/proc`` at the start, then every ``interval`` seconds in a thread, then at the end.
    A process that ends between two samples loses at most its last ``interval`` of CPU (a COPY's
    backend exits when its connection closes, before any "after" reading could see it: the postmaster's
    reaped-children counters, used before, missed most of it). The sampling reads ``/proc`` directly
    (psutil's process-tree walk reads every process of the machine: ~7 % of a core at this interval)
    and its own CPU is taken out of the client's figure. Usage::

        with CpuSampler(postmaster_pids) as cpu:
            ...
        cpu.client, cpu.server
    """

    TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    def __init__(self, postmaster: list[int], interval: float = 0.05) -> None:
        self.postmaster = postmaster
        self.interval = interval
        self.client = 0.0
        self.server = 0.0
        self.samples = 0
        self._first: dict[tuple[int, int], float] = {}  # (pid, start time) -> CPU s at first sight
        self._last: dict[tuple[int, int], float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._client_start = 0.0
        self._own_cpu = 0.0  # the sampling's CPU, not the client's

    @staticmethod
    def _children(pid: int) -> list[int]:
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            return []
        if not os.path.exists(f"/proc/{pid}/task/{tasks[0]}/children"):  # a kernel without it
            try:
                return [c.pid for c in psutil.Process(pid).children()]
            except psutil.Error:
                return []
        found = []
        for task in tasks:
            try:
                found += [int(x) for x in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
            except (OSError, ValueError):
                continue
        return found

    def _tree(self) -> list[int]:
        pids, queue = [], list(self.postmaster)
        while queue:
            pid = queue.pop()
            pids.append(pid)
            queue += self._children(pid)
        return pids

    def _sample(self, at_start: bool = False) -> None:
        for pid in self._tree():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue  # ended meanwhile
            used = (int(fields[11]) + int(fields[12])) / self.TICKS  # utime, stime
            key = (pid, int(fields[19]))  # start time: a reused pid is another process
            # A process first seen after the start began inside the block: all its CPU counts.
            self._first.setdefault(key, used if at_start else 0.0)
            self._last[key] = used
        self.samples += 1

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()
        self._own_cpu += time.thread_time()

    def _sample_here(self, at_start: bool = False) -> None:
        began = time.thread_time()
        self._sample(at_start)
        self._own_cpu += time.thread_time() - began

    def __enter__(self) -> CpuSampler:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        self._client_start = usage.ru_utime + usage.ru_stime
        self._sample_here(at_start=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample_here()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        self.client = max(usage.ru_utime + usage.ru_stime - self._client_start - self._own_cpu, 0.0)
        self.server = sum(self._last[key] - self._first[key] for key in self._last)


def plain_copy(conn: warehouse.Connection, extract: Path) -> dict[str, dict]:
    contract = load_contract()
    manifest = json.loads((extract / "manifest.json").read_text())
    by_file = contract.by_file()
    figures = {}
    with psycopg.connect(conn.url) as pg:
        for rel in manifest["files"]:
            table = by_file[rel]
            defs = ", ".join(f'"{c}" text' for c in table.column_names)
            pg.execute(f'create table "{table.system}__{table.name}" ({defs}, '
                       "_load_id bigint, _line_number bigint)")
        pg.commit()
        for rel, entry in manifest["files"].items():
            table = by_file[rel]
            path = extract / rel
            codec, pg_encoding = (normalise_encoding(manifest["encoding"]) if manifest.get("encoding")
                                  else detect_encoding(path))
            header, skip = read_header(path, codec)
            columns = ", ".join(f'"{c}"' for c in header)
            began = time.perf_counter()
            with pg.cursor() as cur:
                with cur.copy(f'copy "{table.system}__{table.name}" ({columns}) from stdin '
                              f"with (format csv, header true, encoding '{pg_encoding}')") as copy, \
                        path.open("rb") as handle:
                    first = True
                    while chunk := handle.read(CHUNK):
                        copy.write(chunk[skip:] if first else chunk)
                        first = False
                rows = cur.rowcount
            pg.commit()
            seconds = time.perf_counter() - began
            figures[rel] = {"rows": rows, "bytes": entry["bytes"], "seconds": round(seconds, 3),
                            "rows_per_s": round(rows / seconds)}
    return figures


def ingest(conn: warehouse.Connection, extract: Path) -> tuple[dict[str, dict], float]:
    began = time.perf_counter()
    summary = ingest_directory(extract, conn, console=Console(stderr=True, quiet=True))
    total = time.perf_counter() - began
    figures = {f.file: {"rows": f.rows_read, "rows_loaded": f.rows_loaded,
                        "rows_rejected": f.rows_rejected, "seconds": round(f.seconds, 3),
                        "rows_per_s": round(f.rows_per_s), "path": f.path, "status": f.status,
                        "timings": {k: round(v, 3) for k, v in f.timings.items()}}
               for f in summary.files}
    return figures, total


def checkpoint(admin: warehouse.Connection) -> None:
    """Write every dirty page now. Inside a CPU window this makes each side pay for its own data
    reaching disk: plain COPY into a table created in an earlier transaction leaves its pages to the
    checkpointer (which would otherwise run during the next measurement), the ingest's COPY FREEZE
    into a partition of its own transaction syncs them at commit. Not part of any wall time."""
    with psycopg.connect(admin.url, autocommit=True) as pg:
        try:
            pg.execute("checkpoint")
        except psycopg.errors.InsufficientPrivilege:  # another server's login: its CPU is not measured
            pass


def postmaster_pids() -> list[int]:
    """The embedded server's postmaster (none when WAREHOUSE_URL names another server)."""
    if warehouse.external_url():
        return []
    try:
        return [int((warehouse.EmbeddedServer().data_dir / "postmaster.pid").read_text().splitlines()[0])]
    except (OSError, ValueError, IndexError):
        return []


def machine() -> dict:
    memory = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return {"cores": os.cpu_count(), "memory_gib": memory, "platform": platform.platform(),
            "python": platform.python_version()}


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "ingestion"], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "") if out.returncode == 0 else None
    except OSError:
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--extract", type=Path, help="existing extract folder (manifest.json)")
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--keep", action="store_true", help="keep the two bench databases")
    args = parser.parse_args()

    load_before = [round(x, 2) for x in os.getloadavg()]  # the machine may be shared: context
    server = warehouse.ensure_running()
    admin = server.with_dbname("postgres")
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        extract = args.extract
        source = f"--extract {extract}"
        if extract is None:
            extract = Path(tmp) / "extract"
            began = time.perf_counter()
            source = make_extract(extract, args.customers, args.months, args.seed)
            print(f"generated {source} extract in {time.perf_counter() - began:.1f} s")
        names = {k: f"bench_{k}_{uuid.uuid4().hex[:8]}" for k in ("copy", "ingest")}
        with psycopg.connect(admin.url, autocommit=True) as pg:
            for name in names.values():
                pg.execute(f'create database "{name}"')
            version = pg.execute("show server_version").fetchone()[0]
        postmaster = postmaster_pids()
        try:
            checkpoint(admin)
            with CpuSampler(postmaster) as copy_cpu:
                copy_figures = plain_copy(server.with_dbname(names["copy"]), extract)
                checkpoint(admin)
            with CpuSampler(postmaster) as ingest_cpu:
                ingest_figures, ingest_total = ingest(server.with_dbname(names["ingest"]), extract)
                checkpoint(admin)
        finally:
            if not args.keep:
                with psycopg.connect(admin.url, autocommit=True) as pg:
                    for name in names.values():
                        pg.execute(f'drop database if exists "{name}" with (force)')

    rows = sum(f["rows"] for f in copy_figures.values())
    copy_seconds = sum(f["seconds"] for f in copy_figures.values())
    ingest_seconds = sum(f["seconds"] for f in ingest_figures.values())
    tables = {}
    for rel, c in copy_figures.items():
        i = ingest_figures.get(rel, {})
        tables[rel] = {"rows": c["rows"], "bytes": c["bytes"], "copy": c, "ingest": i,
                       "ratio": round(i.get("rows_per_s", 0) / c["rows_per_s"], 3) if c["rows_per_s"] else None}
    result = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "machine": machine(),
        "postgres": version,
        "extract": {"source": source, "customers": args.customers if args.extract is None else None,
                    "months": args.months if args.extract is None else None, "rows": rows},
        "plain_copy": {"seconds": round(copy_seconds, 3), "rows_per_s": round(rows / copy_seconds)},
        "ingest": {"seconds": round(ingest_seconds, 3), "rows_per_s": round(rows / ingest_seconds),
                   "wall_seconds_incl_setup": round(ingest_total, 3)},
        "ratio": round(copy_seconds / ingest_seconds, 3),
        # CPU seconds of each side (this process; the server's processes, None for an external
        # server): on a saturated machine the wall ratio tends to the ratio of total CPU.
        "cpu_s": {side: {"client": round(s.client, 2), "server": round(s.server, 2) if postmaster else None}
                  for side, s in (("plain_copy", copy_cpu), ("ingest", ingest_cpu))},
        "cpu_ratio": (round((copy_cpu.client + copy_cpu.server) / (ingest_cpu.client + ingest_cpu.server), 3)
                      if postmaster else None),
        "load_average": {"before": load_before, "after": [round(x, 2) for x in os.getloadavg()]},
        "target_ratio": 0.7,
        "tables": tables,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=2, ensure_ascii=False) + "\n"
    (RESULTS / f"ingest-{dt.date.today().isoformat()}.json").write_text(text)
    (RESULTS / "ingest-latest.json").write_text(text)
    print(f"plain COPY {result['plain_copy']['rows_per_s']:,} rows/s, ingest "
          f"{result['ingest']['rows_per_s']:,} rows/s, ratio {result['ratio']:.2f} (target 0.7); "
          f"CPU s client+server: COPY {copy_cpu.client:.2f}+{copy_cpu.server:.2f}, ingest "
          f"{ingest_cpu.client:.2f}+{ingest_cpu.server:.2f}; "
          f"load average {load_before[0]} before, {result['load_average']['after'][0]} after")
    for rel, t in tables.items():
        print(f"  {rel:32s} {t['rows']:>10,} rows  copy {t['copy']['rows_per_s']:>9,}/s  "
              f"ingest {t['ingest'].get('rows_per_s', 0):>9,}/s  ratio {t['ratio']}  "
              f"{t['ingest'].get('timings')}")


if __name__ == "__main__":
    main()
