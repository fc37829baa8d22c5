"""Crash safety: SIGKILL `gridcredit ingest` at several moments, rerun, compare with a clean run."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from ingest_helpers import bills, customers, regions, write_extract
from rich.console import Console

from gridcredit.ingestion.contract import load_contract
from gridcredit.ingestion.loader import ingest_directory

GRIDCREDIT = str(Path(sys.executable).with_name("gridcredit"))
READINGS = 300_000
# None: early, during start-up; numbers: seconds after the readings file's load began (COPY with
# the overlapped validation, the checks of quoted lines and duplicate keys, attach and commit each
# get hit on a typical machine).
KILL_AFTER = (None, 0.0, 0.1, 0.25, 0.4, 0.6, 0.9, 1.4)


def _wait_for_readings_load(conn, process, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    with psycopg.connect(conn.url, autocommit=True) as pg:
        while time.monotonic() < deadline and process.poll() is None:
            busy = pg.execute(
                "select 1 from pg_stat_activity where datname = current_database() "
                "and pid <> pg_backend_pid() and query like '%%readings\\_\\_load\\_%%'").fetchone()
            if busy:
                return
            time.sleep(0.01)


def _big_readings(path: Path) -> dict:
    lines = ["meter_id,reading_date,kwh,quality"]
    days = [f"2020-01-{d:02d}" for d in range(1, 31)]
    for i in range(READINGS):
        lines.append(f"M{i // 30:010d},{days[i % 30]},{i % 997}.{i % 100:02d},"
                     f"{'estimated' if i % 11 == 0 else 'actual'}")
    lines[1234] = lines[1234].replace("actual", "guessed").replace("estimated", "guessed")
    data = ("\n".join(lines) + "\n").encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    cents = sum(round(float(line.split(",")[2]) * 100) for line in lines[1:])
    return {"system": "metering", "table": "readings", "rows": READINGS,
            "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data),
            "totals": {"kwh": f"{cents // 100}.{cents % 100:02d}"}}


@pytest.fixture(scope="module")
def extract(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("kill") / "extract"
    write_extract(directory, {"billing.supply_regions": regions(), "billing.customers": customers(50),
                              "billing.bills": bills(200)})
    manifest = json.loads((directory / "manifest.json").read_text())
    manifest["files"]["metering/readings.csv"] = _big_readings(directory / "metering" / "readings.csv")
    (directory / "manifest.json").write_text(json.dumps(manifest))
    return directory


def _database(session_warehouse):
    name = f"t_kill_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(session_warehouse.with_dbname("postgres").url, autocommit=True) as pg:
        pg.execute(f'create database "{name}"')
    return session_warehouse.with_dbname(name)


def _drop(session_warehouse, conn) -> None:
    with psycopg.connect(session_warehouse.with_dbname("postgres").url, autocommit=True) as pg:
        pg.execute(f'drop database if exists "{conn.dbname}" with (force)')


def _state(conn) -> dict:
    """Row count and an ordered checksum of every raw table's business columns and line numbers."""
    state = {}
    with psycopg.connect(conn.url) as pg:
        for table in load_contract().tables:
            columns = ", ".join(f'coalesce("{c}", \'<null>\')' for c in table.column_names)
            state[table.qualified] = pg.execute(
                f"select count(*), md5(string_agg(concat_ws('|', {columns}, _line_number::text), "
                f"E'\\n' order by _line_number, {columns})) from raw_{table.system}.{table.name}"
            ).fetchone()
        state["rejects"] = pg.execute(
            "select count(*), md5(string_agg(concat_ws('|', r.file_path, r.line_number, r.field, "
            "r.reason, r.raw_line), E'\\n' order by r.file_path, r.line_number, r.field)) "
            "from ops.load_rejects r join ops.load_ledger l using (load_id) where l.status = 'loaded'"
        ).fetchone()
    return state


def _invariants(conn) -> None:
    with psycopg.connect(conn.url) as pg:
        duplicates = pg.execute(
            "select system, table_name, file_sha256 from ops.load_ledger where status = 'loaded' "
            "group by 1, 2, 3 having count(*) > 1").fetchall()
        assert not duplicates
        detached = pg.execute(
            "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
            "where n.nspname like 'raw\\_%' and c.relname like '%\\_\\_load\\_%' "
            "and c.relkind = 'r' and not c.relispartition").fetchall()
        assert not detached
        orphans = pg.execute(
            "select count(*) from raw_metering.readings r "
            "where not exists (select 1 from ops.load_ledger l where l.load_id = r._load_id "
            "and l.status = 'loaded')").fetchone()[0]
        assert orphans == 0


@pytest.mark.slow
def test_kill_at_any_moment_then_rerun_equals_clean_run(session_warehouse, cli_env, extract):
    clean = _database(session_warehouse)
    killed = _database(session_warehouse)
    try:
        ingest_directory(extract, clean, console=Console(quiet=True))
        expected = _state(clean)
        assert expected["metering.readings"][0] == READINGS - 1

        env = dict(cli_env, WAREHOUSE_URL=killed.url)
        moments = []
        for delay in KILL_AFTER:
            process = subprocess.Popen([GRIDCREDIT, "ingest", str(extract)], env=env,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            if delay is None:
                time.sleep(0.5)  # while the command starts up / creates the schema
            else:
                _wait_for_readings_load(killed, process)
                time.sleep(delay)
            finished = process.poll() is not None
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
            with psycopg.connect(killed.url) as pg:
                try:
                    loaded = pg.execute("select count(*) from ops.load_ledger "
                                        "where status = 'loaded'").fetchone()[0]
                except psycopg.errors.UndefinedTable:
                    loaded = None
            moments.append((delay, finished, loaded))
            # let the server notice the dead client, then the warehouse must be consistent
            time.sleep(0.2)
            try:
                _invariants(killed)
            except psycopg.errors.UndefinedTable:
                pass  # killed before the first schema commit
        done = subprocess.run([GRIDCREDIT, "ingest", str(extract)], env=env, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        _invariants(killed)
        assert _state(killed) == expected, moments
        print("kill moments (delay s, finished, files loaded by then):", moments)
        with psycopg.connect(killed.url) as pg:
            loaded = pg.execute("select count(*) from ops.load_ledger where status = 'loaded'").fetchone()[0]
        assert loaded == 4
    finally:
        _drop(session_warehouse, clean)
        _drop(session_warehouse, killed)
