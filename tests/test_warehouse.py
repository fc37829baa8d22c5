"""The warehouse: embedded server lifecycle, liveness, root handling, the pipeline lock, the CLI."""

from __future__ import annotations

import os
import pwd
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from conftest import free_port

from gridcredit import warehouse
from gridcredit.locking import PIPELINE_LOCK_KEY, PipelineBusyError, pipeline_lock

GRIDCREDIT = str(Path(sys.executable).with_name("gridcredit"))


def test_session_warehouse_answers_a_real_query(session_warehouse):
    with psycopg.connect(session_warehouse.url) as pg:
        version = int(pg.execute("show server_version_num").fetchone()[0])
        user = pg.execute("select current_user").fetchone()[0]
    assert version >= 140000
    assert user == session_warehouse.user


@pytest.fixture
def private_server(tmp_path):
    server = warehouse.EmbeddedServer(home=tmp_path / "home", port=free_port())
    yield server
    server.stop()
    import shutil

    shutil.rmtree(server.base, ignore_errors=True)


def _postmaster_pid(server: warehouse.EmbeddedServer) -> int:
    with psycopg.connect(server.connection().url) as pg:
        data_dir = pg.execute("show data_directory").fetchone()[0]
    # postmaster.pid is readable by its owner only; as root we can read it, otherwise it is ours.
    return int(Path(data_dir, "postmaster.pid").read_text().splitlines()[0])


def test_embedded_server_lifecycle_and_kill_recovery(private_server):
    conn = private_server.start()
    assert private_server.is_alive()
    # Starting again is a no-op on a live server.
    assert private_server.start() == conn

    # The secret holding the superuser password is owner-only.
    mode = stat.S_IMODE(private_server.secret_file.stat().st_mode)
    assert mode == 0o600

    pid = _postmaster_pid(private_server)
    if os.geteuid() == 0:
        # PostgreSQL refuses root: the server runs as the unprivileged service user, with its data
        # outside any home folder.
        owner = pwd.getpwuid(os.stat(f"/proc/{pid}").st_uid).pw_name
        assert owner == warehouse.SERVICE_USER
        assert str(private_server.data_dir).startswith(str(warehouse.ROOT_BASE))
        assert stat.S_IMODE(private_server.base.stat().st_mode) == 0o700

    # kill -9 leaves a stale postmaster.pid: liveness must come from a real connection.
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while private_server.is_alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not private_server.is_alive()
    assert (private_server.data_dir / "postmaster.pid").exists()
    private_server.start()
    assert private_server.is_alive()

    assert private_server.stop() is True
    assert not private_server.is_alive()


def test_root_handling_leaves_home_permissions_alone(private_server):
    home_dir = Path.home()
    before = stat.S_IMODE(home_dir.stat().st_mode)
    private_server.start()
    assert stat.S_IMODE(home_dir.stat().st_mode) == before


def test_port_taken_by_another_program_is_a_clear_error(tmp_path):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        server = warehouse.EmbeddedServer(home=tmp_path / "home", port=port)
        try:
            with pytest.raises(warehouse.WarehouseError, match=f"port {port}"):
                server.start(timeout=10)
        finally:
            import shutil

            shutil.rmtree(server.base, ignore_errors=True)


def test_parse_url_round_trips_special_characters():
    conn = warehouse.Connection("db.example", 6543, "ana lyst", "p@ss:/word", "credit")
    assert warehouse.parse_url(conn.url) == conn
    assert "p@ss" not in conn.masked_url
    with pytest.raises(warehouse.WarehouseError, match="postgresql://"):
        warehouse.parse_url("mysql://x@y/z")


def test_second_pipeline_command_refuses_while_lock_held(session_warehouse, cli_env, tmp_path):
    with pipeline_lock("test-holder", session_warehouse):
        with pytest.raises(PipelineBusyError, match="test-holder"):
            with pipeline_lock("second", session_warehouse):
                pass
        started = time.monotonic()
        result = subprocess.run([GRIDCREDIT, "run"], env=cli_env, capture_output=True, text=True, timeout=60)
        # It refuses at once instead of waiting for the holder.
        assert time.monotonic() - started < 30
    assert result.returncode == 75, result.stderr
    assert "refusing to start `run`" in result.stderr
    assert "gridcredit:test-holder" in result.stderr


def test_lock_is_released_when_holder_dies(session_warehouse):
    # A process that takes the lock and is killed -9 must not leave it behind.
    code = (
        "import time, psycopg, sys\n"
        "pg = psycopg.connect(sys.argv[1], autocommit=True)\n"
        f"pg.execute('select pg_advisory_lock({PIPELINE_LOCK_KEY})')\n"
        "print('locked', flush=True)\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, session_warehouse.url], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    with pytest.raises(PipelineBusyError):
        with pipeline_lock("probe", session_warehouse):
            pass
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 10
    while True:
        try:
            with pipeline_lock("probe", session_warehouse):
                break
        except PipelineBusyError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["warehouse"],
        ["warehouse", "start"],
        ["warehouse", "stop"],
        ["warehouse", "status"],
        ["warehouse", "url"],
        ["generate"],
        ["ingest"],
        ["run"],
        ["dbt"],
    ],
)
def test_every_command_has_help(args):
    result = subprocess.run([GRIDCREDIT, *args, "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout


def test_status_and_url_against_warehouse_url(cli_env, session_warehouse):
    status = subprocess.run(
        [GRIDCREDIT, "warehouse", "status"], env=cli_env, capture_output=True, text=True, timeout=60
    )
    assert status.returncode == 0, status.stderr
    assert "external (WAREHOUSE_URL)" in status.stderr
    assert session_warehouse.password not in status.stderr
    url = subprocess.run([GRIDCREDIT, "warehouse", "url"], env=cli_env, capture_output=True, text=True, timeout=60)
    assert url.stdout.strip() == session_warehouse.url


def test_status_fails_when_nothing_listens(tmp_path):
    env = dict(os.environ, WAREHOUSE_URL=f"postgresql://nobody:x@127.0.0.1:{free_port()}/none")
    result = subprocess.run([GRIDCREDIT, "warehouse", "status"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "NOT reachable" in result.stderr


def test_unreachable_warehouse_is_a_one_line_error_from_any_command():
    """Every command that needs the warehouse says why it cannot reach it, without a traceback."""
    env = dict(os.environ, WAREHOUSE_URL=f"postgresql://nobody:x@127.0.0.1:{free_port()}/none")
    for args in (["dbt", "debug"], ["privacy", "scan"], ["score"]):
        result = subprocess.run([GRIDCREDIT, *args], env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 1, (args, result.stderr[-2000:])
        assert "error: cannot connect to WAREHOUSE_URL" in result.stderr, (args, result.stderr[-2000:])
        assert "Traceback" not in result.stderr, args


@pytest.mark.pg15
def test_debian_postgresql_15_serves_as_warehouse(pg15_warehouse):
    with psycopg.connect(pg15_warehouse.url) as pg:
        assert pg.execute("show server_version_num").fetchone()[0].startswith("15")
        assert pg.execute("show listen_addresses").fetchone()[0] == "127.0.0.1"


@pytest.mark.pg15
def test_ingest_on_debian_postgresql_15(pg15_warehouse, tmp_path):
    """Ingestion's SQL (partitions, validation helpers, ledger) runs on the oldest supported family."""
    import json

    from gridcredit.ingestion.loader import ingest_directory
    from gridcredit.ingestion.simulator import generate

    generate(tmp_path / "extract", customers=60, months=3, seed=3)
    manifest = json.loads((tmp_path / "extract" / "manifest.json").read_text())
    summary = ingest_directory(tmp_path / "extract", conn=pg15_warehouse)
    assert summary.ok
    again = ingest_directory(tmp_path / "extract", conn=pg15_warehouse)
    assert not again.loaded
    with psycopg.connect(pg15_warehouse.url) as pg:
        for entry in manifest["files"].values():
            count = pg.execute(f'select count(*) from "raw_{entry["system"]}"."{entry["table"]}"').fetchone()[0]
            assert count == entry["rows"], entry
