"""Shared fixtures: one real PostgreSQL warehouse per test session.

The session starts its own embedded server (own state folder, free loopback port), so tests never
touch a developer's warehouse. Tests that change data get their own database cloned from a template
(`fresh_database`), which is far cheaper than a new server.
"""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from gridcredit import warehouse

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data" / "real"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def warehouse_home(tmp_path_factory) -> Iterator[Path]:
    """A private GRIDCREDIT_HOME for the whole session."""
    home = tmp_path_factory.mktemp("gridcredit-home")
    yield home


@pytest.fixture(scope="session")
def session_warehouse(warehouse_home: Path) -> Iterator[warehouse.Connection]:
    """A running warehouse for this test session (WAREHOUSE_URL if given, else embedded)."""
    external = os.environ.get("WAREHOUSE_URL")
    if external:
        yield warehouse.ensure_running()
        return
    server = warehouse.EmbeddedServer(home=warehouse_home, port=free_port())
    conn = server.start()
    yield conn
    server.stop()
    shutil.rmtree(server.base, ignore_errors=True)


@pytest.fixture(scope="session")
def cli_env(session_warehouse: warehouse.Connection) -> dict[str, str]:
    """Environment for running the `gridcredit` CLI as a subprocess against the test warehouse."""
    env = dict(os.environ)
    env["WAREHOUSE_URL"] = session_warehouse.url
    return env


@pytest.fixture
def fresh_database(session_warehouse: warehouse.Connection, monkeypatch) -> Iterator[warehouse.Connection]:
    """An empty database of its own on the session server, WAREHOUSE_URL pointing at it."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = session_warehouse.with_dbname("postgres")
    with psycopg.connect(admin.url, autocommit=True) as pg:
        pg.execute(f'create database "{name}"')
    conn = session_warehouse.with_dbname(name)
    monkeypatch.setenv("WAREHOUSE_URL", conn.url)
    yield conn
    with psycopg.connect(admin.url, autocommit=True) as pg:
        pg.execute(f'drop database if exists "{name}" with (force)')


DEBIAN_PG15_BIN = Path("/usr/lib/postgresql/15/bin")


@pytest.fixture(scope="session")
def pg15_warehouse(tmp_path_factory) -> Iterator[warehouse.Connection]:
    """Debian's PostgreSQL 15, for the tests marked `pg15` (the oldest major we support is 14).

    `make test` installs it where it runs as root; elsewhere a missing server skips these tests
    outside CI and fails them in CI (where nothing may be skipped).
    """
    if not (DEBIAN_PG15_BIN / "initdb").exists():
        message = f"Debian PostgreSQL 15 not installed ({DEBIAN_PG15_BIN}); run `make system-packages`"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    server = warehouse.EmbeddedServer(
        home=tmp_path_factory.mktemp("pg15-home"), port=free_port(), bin_dir=DEBIAN_PG15_BIN
    )
    conn = server.start()
    yield conn
    server.stop()
    shutil.rmtree(server.base, ignore_errors=True)
