"""Shared fixtures: one real PostgreSQL warehouse per test session.

The session starts its own embedded server (own state folder, free loopback port), so tests never
touch a developer's warehouse. Tests that change data get their own database cloned from a template
(`fresh_database`), which is far cheaper than a new server.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from gridcredit import settings, warehouse
from gridcredit.publish import PUBLISHED_SCHEMAS_SQL

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data" / "real"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session", autouse=True)
def session_home(tmp_path_factory) -> Iterator[Path]:
    """One GRIDCREDIT_HOME for every fixture, test and CLI subprocess of the session (pseudonym key,
    Superset secrets and state), never a developer's `.gridcredit/`; restored at the end. A test
    that needs another home sets it with monkeypatch (undone after that test)."""
    home = tmp_path_factory.mktemp("session-home")
    saved = os.environ.get("GRIDCREDIT_HOME")
    os.environ["GRIDCREDIT_HOME"] = str(home)
    yield home
    if saved is None:
        os.environ.pop("GRIDCREDIT_HOME", None)
    else:
        os.environ["GRIDCREDIT_HOME"] = saved


@pytest.fixture(scope="session")
def warehouse_home(tmp_path_factory) -> Iterator[Path]:
    """The session server's own state folder (apart from `session_home`, so that nothing resolving
    the default home finds and stops the session server)."""
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


# -- one pipeline build shared by every test that reads marts ------------------------------------
PIPELINE_CUSTOMERS = int(os.environ.get("GRIDCREDIT_TEST_CUSTOMERS", "800"))
PIPELINE_MONTHS = int(os.environ.get("GRIDCREDIT_TEST_MONTHS", "30"))
PIPELINE_SEED = 7
GRIDCREDIT_BIN = str(Path(sys.executable).with_name("gridcredit"))


@pytest.fixture(scope="session")
def pipeline_extract(tmp_path_factory) -> Path:
    """A small simulated utility: the full history minus its last month (see `pipeline_increment`)."""
    from gridcredit.ingestion.simulator import generate

    out = tmp_path_factory.mktemp("extract") / "full"
    generate(out, customers=PIPELINE_CUSTOMERS, months=PIPELINE_MONTHS - 1, seed=PIPELINE_SEED)
    return out


@pytest.fixture(scope="session")
def pipeline_increment(tmp_path_factory, pipeline_extract: Path) -> Path:
    """The month after `pipeline_extract`, delivered as the source systems would (an increment)."""
    import json

    from gridcredit.ingestion.simulator import generate

    manifest = json.loads((pipeline_extract / "manifest.json").read_text())
    year, month = map(int, manifest["last_month"].split("-"))
    next_month = f"{year + month // 12:04d}-{month % 12 + 1:02d}"
    out = tmp_path_factory.mktemp("extract") / "increment"
    generate(out, customers=PIPELINE_CUSTOMERS, months=PIPELINE_MONTHS, seed=PIPELINE_SEED, from_month=next_month)
    return out


@pytest.fixture(scope="session")
def built_warehouse(session_warehouse: warehouse.Connection, pipeline_extract: Path) -> warehouse.Connection:
    """A database on the session server where `gridcredit run --data <extract>` has run once.

    Read-only for tests: a test that changes data clones it first (`clone_database`).
    """
    import subprocess

    name = "pipeline_built"
    admin = session_warehouse.with_dbname("postgres")
    with psycopg.connect(admin.url, autocommit=True) as pg:
        pg.execute(f'drop database if exists "{name}" with (force)')
        pg.execute(f'create database "{name}"')
    conn = session_warehouse.with_dbname(name)
    # The pseudonym key lives in this home (`session_home`); tests that recompute pseudonyms use it.
    home = settings.home()
    env = dict(os.environ, WAREHOUSE_URL=conn.url, GRIDCREDIT_HOME=str(home))
    result = subprocess.run(
        [GRIDCREDIT_BIN, "run", "--data", str(pipeline_extract)], env=env, capture_output=True, text=True, timeout=1800
    )
    if result.returncode != 0:
        pytest.fail(f"gridcredit run failed ({result.returncode}):\n{result.stdout[-5000:]}\n{result.stderr[-5000:]}")
    return conn


def clone_database(source: warehouse.Connection, name: str | None = None) -> warehouse.Connection:
    """A copy of `source` (a template clone: fast, isolated). Drop it with `drop_database`."""
    name = name or f"clone_{uuid.uuid4().hex[:10]}"
    admin = source.with_dbname("postgres")
    with psycopg.connect(admin.url, autocommit=True) as pg:
        # A template must have no other sessions while it is copied.
        pg.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity where datname = %s and pid <> pg_backend_pid()",
            [source.dbname],
        )
        pg.execute(f'create database "{name}" template "{source.dbname}"')
    return source.with_dbname(name)


def drop_database(conn: warehouse.Connection) -> None:
    admin = conn.with_dbname("postgres")
    with psycopg.connect(admin.url, autocommit=True) as pg:
        pg.execute(f'drop database if exists "{conn.dbname}" with (force)')


# The published schemas; build areas (`<schema>__build`, docs/decisions/0090) are not published.
PUBLISHED_SCHEMAS = PUBLISHED_SCHEMAS_SQL


def published_checksums(conn: warehouse.Connection, schemas: str = PUBLISHED_SCHEMAS) -> dict[str, str]:
    """md5 of every published table's rows in a total order (all columns), keyed by table name."""
    sums = {}
    with psycopg.connect(conn.url) as pg:
        tables = pg.execute(
            "select table_schema, table_name from information_schema.tables"
            " where table_schema ~ %s and table_type = 'BASE TABLE' order by 1, 2",
            [schemas],
        ).fetchall()
        for schema, table in tables:
            sums[f"{schema}.{table}"] = pg.execute(
                f'select md5(coalesce(string_agg(row_text, E\'\\n\' order by row_text), \'\'))'
                f' from (select t::text as row_text from "{schema}"."{table}" as t) as rows'
            ).fetchone()[0]
    return sums
