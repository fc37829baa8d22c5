"""`gridcredit bi up|down|status|provision|credentials`: Superset as a local, provisioned service.

Runs in the pipeline's virtual environment; Superset itself runs in `.venv-superset` (its pins clash
with the pipeline's) and is reached through subprocesses (`superset/bootstrap.py`, gunicorn) and its
REST API.

State, all under ``gridcredit.settings.home()`` (``GRIDCREDIT_HOME``, default ``.gridcredit/``):

* ``secrets/superset.env`` (0600, folder 0700): SECRET_KEY, admin password, the passwords of the
  metadata role, of the read-only warehouse role and of the provisioned users; generated once;
* ``superset/superset.pid``, ``superset/superset.log``: the gunicorn server;
* ``superset/data/``: Superset's local data folder.

Superset's metadata lives in the database ``superset_meta`` on the warehouse server, owned by the role
of the same name (``GRIDCREDIT_SUPERSET_META_DB`` or ``superset.metadata_database`` renames both);
dashboards read the warehouse as ``bi_reader``, which can only read the published schemas.
"""

from __future__ import annotations

import io
import json
import os
import re
import secrets
import signal
import subprocess
import time
import urllib.error
import urllib.request
import uuid as uuidlib
import zipfile
from dataclasses import dataclass
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Annotated, Any

import psycopg
import typer
import yaml
from psycopg import sql
from rich.console import Console

from gridcredit import settings, warehouse

PROJECT_ROOT = settings.PROJECT_ROOT
SUPERSET_DIR = PROJECT_ROOT / "superset"
ASSETS_DIR = SUPERSET_DIR / "assets"
CONFIG_FILE = SUPERSET_DIR / "superset_config.py"
BOOTSTRAP = SUPERSET_DIR / "bootstrap.py"
INSTALL_SCRIPT = SUPERSET_DIR / "install.sh"

ADMIN_USER = "admin"
READER_ROLE = "bi_reader"
# The Superset database (assets/databases/*.yaml) that dashboards read through READER_ROLE.
WAREHOUSE_DATABASE_NAME = "gridcredit_warehouse"
# Published schemas: what BI and analysts may read (README: `marts*` and `ml`), plus the policy seeds
# and the what-if results of `gridcredit policy simulate` (kept apart from pipeline runs, for charting).
PUBLISHED_SCHEMA_PATTERNS = ("marts_%", "ml", "reference", "whatif")

# Row-level security: the one column every region-bearing dataset carries, and where regions live.
REGION_COLUMN = "region_code"
REGIONS_QUERY = "select region_code, region_name from marts_core.dim_supply_regions order by region_code"
# Pre-aggregated marts hold a region as a segment: their rows of one region are opened by this clause.
REGION_SEGMENT_CLAUSES = {
    "fct_collection_segment_months": "segment_dimension = 'region_code' and segment_value = '{code}'",
    "fct_credit_decision_segments": "segment_dimension = 'region_code' and segment_value = '{code}'",
    "segment_results": "segment_dimension = 'region_code' and segment_value = '{code}'",  # whatif
}
REGION_ROLE_PREFIX = "Regional manager "
FULL_ACCESS_ROLES = ("Admin", "Analyst", "Viewer")

console = Console(stderr=True, soft_wrap=True)


class BIError(RuntimeError):
    """Superset could not be installed, started, reached or provisioned."""


# -- settings and secrets ------------------------------------------------------------------------
@dataclass(frozen=True)
class BISettings:
    host: str
    port: int
    workers: int
    threads: int
    timeout: int
    venv: Path
    https: bool
    # Seconds a start step may take (each bootstrap step, then /health): on a shared 2-core machine
    # under load ~20, `bootstrap.py security` alone took over 300 s.
    startup_timeout: int = 900

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


def bi_settings() -> BISettings:
    section = settings.project_config().get("superset", {}) or {}
    venv = Path(os.environ.get("GRIDCREDIT_SUPERSET_VENV", section.get("venv", PROJECT_ROOT / ".venv-superset")))
    if not venv.is_absolute():
        venv = PROJECT_ROOT / venv
    return BISettings(
        host="127.0.0.1",
        port=int(os.environ.get("GRIDCREDIT_SUPERSET_PORT", section.get("port", 8088))),
        workers=int(section.get("workers", 2)),
        threads=int(section.get("threads", 4)),
        timeout=int(section.get("timeout", 120)),
        venv=venv,
        https=str(os.environ.get("GRIDCREDIT_SUPERSET_HTTPS", section.get("https", False))).lower()
        in {"1", "true", "yes"},
        startup_timeout=int(
            os.environ.get("GRIDCREDIT_SUPERSET_STARTUP_TIMEOUT", section.get("startup_timeout", 900))
        ),
    )


def state_dir() -> Path:
    path = settings.home() / "superset"
    path.mkdir(parents=True, exist_ok=True)
    return path


def secrets_file() -> Path:
    return settings.home() / "secrets" / "superset.env"


def _read_secrets(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            values[key] = value
    return values


def secret(name: str) -> str:
    """A secret of this installation, generated on first use and kept in the owner-only file."""
    path = secrets_file()
    values = _read_secrets(path)
    if name in values:
        return values[name]
    values[name] = secrets.token_urlsafe(48 if name == "SUPERSET_SECRET_KEY" else 24)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write("# gridcredit Superset secrets: generated once, owner-only; never commit\n")
        handle.writelines(f"{key}={value}\n" for key, value in values.items())
    tmp.replace(path)
    return values[name]


def _user_password(username: str) -> str:
    return secret("SUPERSET_ADMIN_PASSWORD" if username == ADMIN_USER else f"SUPERSET_PASSWORD_{username.upper()}")


# -- warehouse side: metadata database and read-only role ---------------------------------------
def metadata_database() -> str:
    """Name of the database (and of its owner role) holding Superset's metadata."""
    section = settings.project_config().get("superset", {}) or {}
    return os.environ.get("GRIDCREDIT_SUPERSET_META_DB", section.get("metadata_database", "superset_meta"))


def _password_works(conn: warehouse.Connection, role: str, password: str) -> bool:
    try:
        with psycopg.connect(
            warehouse.Connection(conn.host, conn.port, role, password, conn.dbname).url, connect_timeout=5
        ):
            return True
    except psycopg.OperationalError:
        return False


def _ensure_login_role(pg: psycopg.Connection, conn: warehouse.Connection, role: str, password: str) -> None:
    """Create the role, or reset its password only when ours does not work (roles are server-wide)."""
    exists = pg.execute("select 1 from pg_roles where rolname = %s", (role,)).fetchone()
    if exists and _password_works(conn, role, password):
        return
    verb = "alter" if exists else "create"
    pg.execute(
        sql.SQL("{} role {} with login nosuperuser nocreatedb nocreaterole noinherit password {}").format(
            sql.SQL(verb), sql.Identifier(role), sql.Literal(password)
        )
    )


def _key_fingerprint() -> str:
    import hashlib

    return hashlib.sha256(("gridcredit-superset:" + secret("SUPERSET_SECRET_KEY")).encode()).hexdigest()


def ensure_metadata_database(conn: warehouse.Connection) -> warehouse.Connection:
    """Create the role and database holding Superset's metadata; return how to reach it.

    Superset encrypts connection passwords in its metadata with SECRET_KEY: a metadata database set
    up by another installation (another GRIDCREDIT_HOME, another key) is refused with a clear message
    instead of failing later with "Invalid decryption key".
    """
    name = metadata_database()
    password = secret("SUPERSET_META_PASSWORD")
    admin = conn.with_dbname("postgres")
    with psycopg.connect(admin.url, autocommit=True) as pg:
        _ensure_login_role(pg, admin, name, password)
        if not pg.execute("select 1 from pg_database where datname = %s", (name,)).fetchone():
            pg.execute(sql.SQL("create database {} owner {}").format(sql.Identifier(name), sql.Identifier(name)))
        pg.execute(sql.SQL("revoke all on database {} from public").format(sql.Identifier(name)))
    meta = warehouse.Connection(conn.host, conn.port, name, password, name)
    with psycopg.connect(meta.url, autocommit=True) as pg:
        pg.execute("create table if not exists gridcredit_installation (secret_key_sha256 text not null)")
        row = pg.execute("select secret_key_sha256 from gridcredit_installation").fetchone()
        if row is None:
            pg.execute("insert into gridcredit_installation values (%s)", (_key_fingerprint(),))
        elif row[0] != _key_fingerprint():
            raise BIError(
                f"the Superset metadata database {name} on {conn.host}:{conn.port} belongs to another installation "
                f"(another SECRET_KEY than {secrets_file()}); use that installation's GRIDCREDIT_HOME, or another "
                "database with GRIDCREDIT_SUPERSET_META_DB=<name>"
            )
    return meta


def published_schemas(pg: psycopg.Connection) -> list[str]:
    conditions = " or ".join("nspname like %s" for _ in PUBLISHED_SCHEMA_PATTERNS)
    rows = pg.execute(
        f"select nspname from pg_namespace where ({conditions}) and nspname not like '%%\\_\\_%%' order by 1",
        PUBLISHED_SCHEMA_PATTERNS,
    ).fetchall()
    return [row[0] for row in rows]


def grant_reader(conn: warehouse.Connection) -> list[str]:
    """(Re)create the read-only role and grant it the published schemas; return those schemas.

    Safe to call after every publish: a schema switched in by write-audit-publish is a new schema
    and needs its grants again. Default privileges make tables the warehouse owner creates later in
    these schemas readable too (dbt rebuilds drop and recreate tables).
    """
    password = secret("BI_READER_PASSWORD")
    with psycopg.connect(conn.url, autocommit=True) as pg:
        _ensure_login_role(pg, conn, READER_ROLE, password)
        reader = sql.Identifier(READER_ROLE)
        pg.execute(sql.SQL("alter role {} set default_transaction_read_only = on").format(reader))
        pg.execute(sql.SQL("alter role {} set statement_timeout = '60s'").format(reader))
        pg.execute(sql.SQL("grant connect on database {} to {}").format(sql.Identifier(conn.dbname), reader))
        pg.execute(sql.SQL("revoke create on schema public from {}").format(reader))
        schemas = published_schemas(pg)
        for schema in schemas:
            name = sql.Identifier(schema)
            pg.execute(sql.SQL("grant usage on schema {} to {}").format(name, reader))
            pg.execute(sql.SQL("grant select on all tables in schema {} to {}").format(name, reader))
            pg.execute(
                sql.SQL("alter default privileges in schema {} grant select on tables to {}").format(name, reader)
            )
    # The warehouse-wide rules (row-level security, other roles): gridcredit/access.py.
    from gridcredit import access

    access.apply(conn)
    return schemas


# -- the Superset process -----------------------------------------------------------------------
def _pid_file() -> Path:
    return state_dir() / "superset.pid"


def log_file() -> Path:
    return state_dir() / "superset.log"


def superset_env(conn: warehouse.Connection, meta: warehouse.Connection | None = None) -> dict[str, str]:
    """Environment for every Superset process (read by superset_config.py)."""
    cfg = bi_settings()
    name = metadata_database()
    meta = meta or warehouse.Connection(conn.host, conn.port, name, secret("SUPERSET_META_PASSWORD"), name)
    secret("SUPERSET_SECRET_KEY")  # generated before the first start
    data_dir = state_dir() / "data"
    data_dir.mkdir(exist_ok=True)
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"SUPERSET_SECRET_KEY", "SQLALCHEMY_DATABASE_URI", "WAREHOUSE_URL", "PYTHONPATH"}
    }
    env.update(
        {
            "SUPERSET_CONFIG_PATH": str(CONFIG_FILE),
            "GRIDCREDIT_SUPERSET_SECRETS": str(secrets_file()),
            "SUPERSET_METADATA_URL": meta.url.replace("postgresql://", "postgresql+psycopg2://", 1),
            "GRIDCREDIT_SUPERSET_DATA_DIR": str(data_dir),
            "GRIDCREDIT_SUPERSET_HTTPS": "true" if cfg.https else "false",
            "FLASK_APP": "superset.app:create_app()",
            "SUPERSET_LOG_LEVEL": "warning",
            "PYTHONWARNINGS": "ignore",
        }
    )
    return env


def _venv_bin(name: str) -> Path:
    path = bi_settings().venv / "bin" / name
    if not path.exists():
        raise BIError(
            f"{path} not found: Superset's virtual environment is missing; create it with `bash {INSTALL_SCRIPT}` "
            "(or `make install`)"
        )
    return path


def _bootstrap(command: str, spec: dict, env: dict[str, str], timeout: int | None = None) -> dict:
    timeout = timeout or bi_settings().startup_timeout
    try:
        result = subprocess.run(
            [str(_venv_bin("python")), str(BOOTSTRAP), command],
            input=json.dumps(spec),
            capture_output=True,
            text=True,
            env=env,
            cwd=state_dir(),
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as error:
        raise BIError(
            f"superset bootstrap {command} did not finish within {timeout} s (a loaded machine? raise "
            "superset.startup_timeout in gridcredit.yaml or GRIDCREDIT_SUPERSET_STARTUP_TIMEOUT)"
        ) from error
    if result.returncode != 0:
        tail = (result.stderr or result.stdout)[-3000:]
        raise BIError(f"superset bootstrap {command} failed:\n{tail}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _read_pid() -> int | None:
    try:
        pid = int(_pid_file().read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    # A zombie (killed, not reaped) is not running.
    try:
        if Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z"):
            return None
    except (FileNotFoundError, IndexError):
        return None
    return pid


# Superset listens on loopback: never send its requests (or session cookies) through an HTTP proxy.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _http_ok(url: str, timeout: float = 3.0) -> bool:
    try:
        with _DIRECT.open(url, timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _port_in_use(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def bi_status() -> dict[str, Any]:
    """Whether Superset answers /health (a real HTTP request), with its URL and pid."""
    cfg = bi_settings()
    pid = _read_pid()
    healthy = _http_ok(f"{cfg.url}/health")
    return {"url": cfg.url, "pid": pid, "running": pid is not None, "healthy": healthy}


def bi_up(conn: warehouse.Connection, wait: int | None = None) -> dict[str, Any]:
    """Prepare the metadata database, migrate, sync roles and the admin, start gunicorn, wait for /health."""
    cfg = bi_settings()
    wait = wait or cfg.startup_timeout
    status = bi_status()
    if status["running"] and status["healthy"]:
        return status
    if status["running"]:
        bi_down()
    if _port_in_use(cfg.port):
        raise BIError(
            f"port {cfg.port} on 127.0.0.1 is taken by another program; choose another with "
            "GRIDCREDIT_SUPERSET_PORT=<port> (or superset.port in gridcredit.yaml)"
        )
    gunicorn = _venv_bin("gunicorn")
    meta = ensure_metadata_database(conn)
    env = superset_env(conn, meta)
    _bootstrap("init", {"admin": {"username": ADMIN_USER, "password": _user_password(ADMIN_USER)}}, env)
    log = log_file()
    with log.open("ab") as handle:
        process = subprocess.Popen(  # noqa: S603 - fixed arguments
            [
                str(gunicorn),
                "--bind",
                f"{cfg.host}:{cfg.port}",
                "--workers",
                str(cfg.workers),
                "--worker-class",
                "gthread",
                "--threads",
                str(cfg.threads),
                "--timeout",
                str(cfg.timeout),
                "--no-control-socket",
                "--graceful-timeout",
                "10",
                "--limit-request-line",
                "0",
                "--limit-request-field_size",
                "0",
                "superset.app:create_app()",
            ],
            env=env,
            cwd=state_dir(),
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    _pid_file().write_text(f"{process.pid}\n")
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if process.poll() is not None:
            _pid_file().unlink(missing_ok=True)
            tail = log.read_text(errors="replace")[-3000:]
            raise BIError(f"Superset exited with code {process.returncode}; log {log}:\n{tail}")
        if _http_ok(f"{cfg.url}/health"):
            return bi_status()
        time.sleep(0.5)
    bi_down()
    raise BIError(f"Superset did not answer {cfg.url}/health within {wait} s; see {log}")


def bi_down(timeout: float = 30) -> bool:
    """Stop the gunicorn server started by `bi up` (its whole process group). False if none ran."""
    pid = _read_pid()
    if pid is None:
        _pid_file().unlink(missing_ok=True)
        return False
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            waited, _ = os.waitpid(pid, os.WNOHANG)
            if waited == pid:
                break
        except ChildProcessError:
            pass
        if _read_pid_alive(pid) is False:
            break
        time.sleep(0.2)
    else:
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    _pid_file().unlink(missing_ok=True)
    return True


def _read_pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return not Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except (FileNotFoundError, IndexError):
        return False


def credentials() -> dict[str, str]:
    return {"url": bi_settings().url, "username": ADMIN_USER, "password": _user_password(ADMIN_USER)}


# -- REST client --------------------------------------------------------------------------------
class SupersetClient:
    """A logged-in session on the Superset REST API (session cookie + CSRF token, as writes need)."""

    def __init__(self, base_url: str, username: str, password: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._login_payload = {"username": username, "password": password, "provider": "db", "refresh": False}
        self.login()

    def login(self) -> None:
        """A fresh session: cookie, access token (Superset's expire after 15 minutes) and CSRF token."""
        self.token = self.csrf = None
        self.cookies = CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPCookieProcessor(self.cookies)
        )
        self.token = self.request("POST", "/api/v1/security/login", self._login_payload)["access_token"]
        self.csrf = self.request("GET", "/api/v1/security/csrf_token/")["result"]

    def request(
        self,
        method: str,
        path: str,
        payload: Any = None,
        *,
        body: bytes | None = None,
        content_type: str | None = None,
        timeout: float = 120,
        raw: bool = False,
        _retried: bool = False,
    ) -> Any:
        headers = {"Accept": "application/json", "Referer": self.base_url + "/"}
        if getattr(self, "token", None):
            headers["Authorization"] = f"Bearer {self.token}"
        if getattr(self, "csrf", None):
            headers["X-CSRFToken"] = self.csrf
        if payload is not None:
            body = json.dumps(payload).encode()
            content_type = "application/json"
        if content_type:
            headers["Content-Type"] = content_type
        request = urllib.request.Request(self.base_url + path, data=body, method=method, headers=headers)
        try:
            with self.opener.open(request, timeout=timeout) as response:
                data = response.read()
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace")[:2000]
            if error.code == 401 and self.token and path != "/api/v1/security/login" and not _retried:
                # The access token expired (long test sessions and benchmarks): log in again, once.
                self.login()
                return self.request(
                    method, path, payload, body=body, content_type=content_type, timeout=timeout, raw=raw, _retried=True
                )
            raise BIError(f"{method} {path} -> HTTP {error.code}: {detail}") from error
        if raw:
            return data
        return json.loads(data) if data else None

    def upload(self, path: str, fields: dict[str, str], files: dict[str, tuple[str, bytes]]) -> Any:
        boundary = uuidlib.uuid4().hex
        parts = []
        for name, value in fields.items():
            parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
        for name, (filename, content) in files.items():
            parts.append(
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                "Content-Type: application/zip\r\n\r\n".encode()
                + content
                + b"\r\n"
            )
        parts.append(f"--{boundary}--\r\n".encode())
        return self.request(
            "POST", path, body=b"".join(parts), content_type=f"multipart/form-data; boundary={boundary}", timeout=600
        )


def client(username: str = ADMIN_USER, password: str | None = None) -> SupersetClient:
    return SupersetClient(bi_settings().url, username, password or _user_password(username))


# -- assets: render the bundle from git + environment + catalog ---------------------------------
def assets_dir() -> Path:
    return Path(os.environ.get("GRIDCREDIT_SUPERSET_ASSETS", ASSETS_DIR))


def load_assets(directory: Path | None = None) -> dict[str, dict]:
    """The bundle in git: relative path -> parsed YAML."""
    directory = directory or assets_dir()
    files = {}
    for path in sorted(directory.rglob("*.yaml")):
        files[path.relative_to(directory).as_posix()] = yaml.safe_load(path.read_text(encoding="utf-8"))
    if "metadata.yaml" not in files:
        raise BIError(f"{directory} holds no metadata.yaml: not an export bundle")
    return files


CATALOG_QUERY = """
select
    cols.table_schema,
    cols.table_name,
    cols.column_name,
    cols.data_type,
    cols.ordinal_position,
    col_description(cls.oid, cols.ordinal_position::int) as column_comment,
    obj_description(cls.oid, 'pg_class') as table_comment
from information_schema.columns as cols
inner join pg_namespace as nsp on nsp.nspname = cols.table_schema
inner join pg_class as cls on cls.relnamespace = nsp.oid and cls.relname = cols.table_name
where cols.table_schema = any(%s)
order by cols.table_schema, cols.table_name, cols.ordinal_position
"""

TEMPORAL_TYPES = ("date", "timestamp", "timestamp without time zone", "timestamp with time zone")
NUMERIC_TYPES = ("smallint", "integer", "bigint", "numeric", "real", "double precision")


def read_catalog(conn: warehouse.Connection, schemas: list[str]) -> dict[tuple[str, str], dict]:
    """Columns, types and persisted dbt descriptions (PostgreSQL comments) of the published tables."""
    catalog: dict[tuple[str, str], dict] = {}
    with psycopg.connect(conn.url) as pg:
        for schema, table, column, data_type, _, column_comment, table_comment in pg.execute(CATALOG_QUERY, (schemas,)):
            entry = catalog.setdefault((schema, table), {"description": table_comment, "columns": {}})
            entry["columns"][column] = {"type": data_type, "description": column_comment}
    return catalog


def _superset_type(data_type: str) -> str:
    mapping = {
        "character varying": "VARCHAR",
        "text": "TEXT",
        "integer": "INTEGER",
        "bigint": "BIGINT",
        "smallint": "SMALLINT",
        "numeric": "NUMERIC",
        "double precision": "DOUBLE PRECISION",
        "real": "REAL",
        "boolean": "BOOLEAN",
        "date": "DATE",
        "timestamp without time zone": "TIMESTAMP WITHOUT TIME ZONE",
        "timestamp with time zone": "TIMESTAMP WITH TIME ZONE",
    }
    return mapping.get(data_type, data_type.upper())


def humanize(name: str) -> str:
    """A column label for BI users: `arrears_over_90_days_amount` -> `Arrears over 90 days amount`."""
    words = name.split("_")
    if words[-1] == "id" and len(words) > 1:
        words[-1] = "ID"
    return " ".join(words)[:1].upper() + " ".join(words)[1:]


def enrich_dataset(dataset: dict, catalog: dict[tuple[str, str], dict]) -> dict:
    """Fill a dataset's columns and descriptions from the warehouse catalog (dbt's persisted docs).

    Columns listed in git keep their settings (labels, expressions, groupby/filterable); a column of
    the table missing from git is added with defaults; empty descriptions come from the column
    comments dbt wrote with persist_docs. A dataset whose table is not published fails provisioning.
    """
    key = (dataset["schema"], dataset["table_name"])
    if dataset.get("sql"):
        return dataset
    if key not in catalog:
        raise BIError(
            f"dataset {dataset['table_name']} reads {key[0]}.{key[1]}, which is not a published table; "
            "run the pipeline (`gridcredit run`) before provisioning"
        )
    table = catalog[key]
    if not dataset.get("description"):
        dataset["description"] = table["description"]
    listed = {column["column_name"]: column for column in dataset.get("columns") or []}
    columns = []
    for name, info in table["columns"].items():
        column = listed.pop(name, None) or {"column_name": name}
        if not column.get("verbose_name"):
            column["verbose_name"] = humanize(name)
        column.setdefault("is_dttm", info["type"] in TEMPORAL_TYPES)
        column.setdefault("is_active", True)
        column["type"] = _superset_type(info["type"])
        column.setdefault("advanced_data_type", None)
        column.setdefault("groupby", info["type"] not in NUMERIC_TYPES or name.endswith(("_id", "_code", "_band")))
        column.setdefault("filterable", True)
        column.setdefault("expression", None)
        if not column.get("description"):
            column["description"] = info["description"]
        column.setdefault("python_date_format", None)
        column.setdefault("extra", {})
        columns.append(column)
    # Calculated columns (with an expression) stay; a plain column missing from the table is an error.
    for name, column in listed.items():
        if not column.get("expression"):
            raise BIError(f"dataset {dataset['table_name']}: column {name} is not in {key[0]}.{key[1]}")
        columns.append(column)
    dataset["columns"] = columns
    return dataset


def build_query_context(chart: dict) -> dict:
    """The chart-data request Superset's frontend would send for a chart's params.

    Exported charts carry it as `query_context`; charts written by hand in git may leave it out and
    get it here, so the chart data API answers for every chart (reports, tests, the benchmark).
    """
    params = chart["params"]
    viz = chart["viz_type"]
    filters = []
    for adhoc in params.get("adhoc_filters") or []:
        if adhoc.get("expressionType") == "SIMPLE":
            filters.append({"col": adhoc["subject"], "op": adhoc["operator"], "val": adhoc.get("comparator")})
    extras_where = " and ".join(
        f"({adhoc['sqlExpression']})"
        for adhoc in params.get("adhoc_filters") or []
        if adhoc.get("expressionType") == "SQL" and adhoc.get("clause", "WHERE") == "WHERE"
    )
    metrics = params.get("metrics") or ([params["metric"]] if params.get("metric") else [])
    if viz in {
        "echarts_timeseries_bar",
        "echarts_timeseries_line",
        "echarts_timeseries_smooth",
        "echarts_timeseries_step",
        "echarts_area",
        "echarts_timeseries",
        "big_number",
    }:
        columns = [params["x_axis"], *(params.get("groupby") or [])]
        orderby = [[params["x_axis"], True]]
    elif viz == "table" and params.get("query_mode") == "raw":
        columns = list(params.get("all_columns") or [])
        # No metrics at all (None, as the frontend sends in raw mode): an empty list makes Superset
        # GROUP BY every column, which dedupes rows and defeats the index in the list's sort order.
        metrics = None
        orderby = [
            [col, asc]
            for col, asc in (json.loads(x) if isinstance(x, str) else x for x in params.get("order_by_cols") or [])
        ]
    elif viz == "pivot_table_v2":
        columns = [*(params.get("groupbyRows") or []), *(params.get("groupbyColumns") or [])]
        orderby = [[metrics[0], not params.get("order_desc", True)]] if metrics else []
    elif viz in {"big_number_total"}:
        columns = []
        orderby = []
    elif viz == "mixed_timeseries":
        columns = [params["x_axis"]]
        metrics = [*(params.get("metrics") or []), *(params.get("metrics_b") or [])]
        orderby = [[params["x_axis"], True]]
    else:
        columns = list(params.get("groupby") or []) + list(params.get("columns") or [])
        sort_metric = params.get("timeseries_limit_metric") or (metrics[0] if metrics else None)
        orderby = [[sort_metric, not params.get("order_desc", True)]] if sort_metric else []
    query = {
        "filters": filters,
        "extras": {"having": "", "where": extras_where},
        "applied_time_extras": {},
        "columns": columns,
        "metrics": metrics,
        "orderby": orderby,
        "annotation_layers": [],
        "row_limit": params.get("row_limit", 10000),
        "series_limit": 0,
        "order_desc": params.get("order_desc", True),
        "url_params": {},
        "custom_params": {},
        "custom_form_data": {},
    }
    if params.get("time_range") and params.get("granularity_sqla"):
        query["time_range"] = params["time_range"]
        query["granularity"] = params["granularity_sqla"]
    return {
        "datasource": {"id": 0, "type": "table"},
        "force": False,
        "queries": [query],
        "form_data": params,
        "result_format": "json",
        "result_type": "full",
    }


def render_bundle(
    conn: warehouse.Connection, directory: Path | None = None
) -> tuple[bytes, dict[str, str], dict[str, dict]]:
    """The import ZIP, the passwords form field and the rendered files.

    Connection details come from the environment (the warehouse `conn`, the read-only role), dataset
    columns and descriptions from the catalog; no password is ever in git or in the ZIP.
    """
    files = load_assets(directory)
    schemas = sorted({doc["schema"] for path, doc in files.items() if path.startswith("datasets/")})
    catalog = read_catalog(conn, schemas)
    passwords = {}
    root = "gridcredit_assets"
    buffer = io.BytesIO()
    rendered = {}
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, doc in files.items():
            if path.startswith("databases/"):
                doc["sqlalchemy_uri"] = (
                    f"postgresql+psycopg2://{READER_ROLE}:XXXXXXXXXX@{conn.host}:{conn.port}/{conn.dbname}"
                )
                passwords[path] = secret("BI_READER_PASSWORD")
            elif path.startswith("datasets/"):
                doc = enrich_dataset(doc, catalog)
            elif path.startswith("charts/") and not doc.get("query_context"):
                doc["query_context"] = json.dumps(build_query_context(doc))
            rendered[path] = doc
            archive.writestr(f"{root}/{path}", yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
    return buffer.getvalue(), passwords, rendered


# -- the same dashboards on the Spark engine -----------------------------------------------------
SPARK_DATABASE_NAME = "gridcredit_spark"
# Spark SQL type -> the PostgreSQL spelling enrich_dataset knows (is_dttm, groupby, Superset type).
_SPARK_TYPES = {
    "string": "text",
    "int": "integer",
    "bigint": "bigint",
    "smallint": "smallint",
    "double": "double precision",
    "float": "real",
    "boolean": "boolean",
    "date": "date",
    "timestamp": "timestamp without time zone",
    "timestamp_ntz": "timestamp without time zone",
}


def _spark_uuid(value: str) -> str:
    """A stable uuid for the Spark copy of an asset (the PostgreSQL assets keep theirs)."""
    return str(uuidlib.uuid5(uuidlib.NAMESPACE_URL, f"gridcredit-spark:{value}"))


def read_spark_catalog(endpoint, tables: list[tuple[str, str]]) -> dict[tuple[str, str], dict]:
    """Columns, types and dbt's persisted column descriptions of Spark tables (``describe``)."""
    from gridcredit import spark

    catalog: dict[tuple[str, str], dict] = {}
    with spark.connect(endpoint) as cursor:
        for schema, table in tables:
            cursor.execute(f"describe `{schema}`.`{table}`")
            columns = {}
            for name, data_type, comment in cursor.fetchall():
                if not name or name.startswith("#"):
                    break  # partition information follows; the columns are listed above it
                kind = data_type.lower()
                columns[name] = {
                    "type": "numeric" if kind.startswith("decimal") else _SPARK_TYPES.get(kind, kind),
                    "description": comment or None,
                }
            catalog[(schema, table)] = {"description": None, "columns": columns}
    return catalog


def render_spark_bundle(endpoint, dashboards: tuple[str, ...], directory: Path | None = None) -> tuple[bytes, dict]:
    """The given dashboards (by slug) as a second set of assets reading the Spark engine's marts.

    Same charts, datasets and metrics as in git; the database is the Spark Thrift server (Superset's
    Hive/Spark SQL driver, PyHive), uuids derived from the originals, slugs end in ``-spark``.
    """
    files = load_assets(directory)
    by_uuid = {doc["uuid"]: (path, doc) for path, doc in files.items() if isinstance(doc, dict) and "uuid" in doc}
    chosen = [doc for path, doc in files.items() if path.startswith("dashboards/") and doc["slug"] in dashboards]
    missing = set(dashboards) - {doc["slug"] for doc in chosen}
    if missing:
        raise BIError(f"no dashboard with slug {', '.join(sorted(missing))} in {directory or assets_dir()}")
    chart_uuids = [
        node["meta"]["uuid"]
        for doc in chosen
        for node in doc["position"].values()
        if isinstance(node, dict) and node.get("type") == "CHART"
    ]
    dataset_uuids = sorted({by_uuid[uuid][1]["dataset_uuid"] for uuid in chart_uuids})
    datasets = [json.loads(json.dumps(by_uuid[uuid][1])) for uuid in dataset_uuids]
    catalog = read_spark_catalog(endpoint, sorted({(doc["schema"], doc["table_name"]) for doc in datasets}))
    database_uuid = _spark_uuid(next(doc["uuid"] for path, doc in files.items() if path.startswith("databases/")))
    rendered: dict[str, dict] = {
        "metadata.yaml": files["metadata.yaml"],
        f"databases/{SPARK_DATABASE_NAME}.yaml": {
            "database_name": SPARK_DATABASE_NAME,
            "sqlalchemy_uri": f"hive://gridcredit@{endpoint.host}:{endpoint.port}/default",
            "cache_timeout": None,
            "expose_in_sqllab": True,
            "allow_run_async": False,
            "allow_ctas": False,
            "allow_cvas": False,
            "allow_dml": False,
            "allow_csv_upload": False,
            "extra": {"allows_virtual_table_explore": True, "metadata_params": {}, "engine_params": {}},
            "impersonate_user": False,
            "uuid": database_uuid,
            "version": "1.0.0",
        },
    }
    for doc in datasets:
        doc = enrich_dataset(doc, catalog)
        doc["uuid"] = _spark_uuid(doc["uuid"])
        doc["database_uuid"] = database_uuid
        rendered[f"datasets/{SPARK_DATABASE_NAME}/{doc['table_name']}.yaml"] = doc
    for uuid in chart_uuids:
        path, doc = by_uuid[uuid]
        doc = json.loads(json.dumps(doc))
        doc["uuid"] = _spark_uuid(uuid)
        doc["dataset_uuid"] = _spark_uuid(doc["dataset_uuid"])
        doc["query_context"] = json.dumps(build_query_context(doc))
        rendered[f"charts/spark__{Path(path).name}"] = doc
    # Native filters and chart settings in a dashboard name datasets and charts by uuid: all remapped.
    remap = {uuid: _spark_uuid(uuid) for uuid in (*chart_uuids, *dataset_uuids)}
    for doc in chosen:
        text = json.dumps(doc)
        for old, new in remap.items():
            text = text.replace(old, new)
        doc = json.loads(text)
        doc["uuid"] = _spark_uuid(doc["uuid"])
        doc["slug"] = f"{doc['slug']}-spark"
        doc["dashboard_title"] = f"{doc['dashboard_title']} (Spark)"
        rendered[f"dashboards/{doc['slug']}.yaml"] = doc
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, doc in rendered.items():
            text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
            archive.writestr(f"gridcredit_spark_assets/{path}", text)
    return buffer.getvalue(), rendered


def provision_spark(endpoint, dashboards: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Import the Spark copies of the dashboards (settings: bi.spark_dashboards) into the running Superset."""
    status = bi_status()
    if not status["healthy"]:
        raise BIError(f"Superset is not running at {status['url']}: start it with `gridcredit bi up`")
    dashboards = dashboards or tuple(
        (settings.project_config().get("superset", {}) or {}).get("spark_dashboards", ["collections"])
    )
    bundle, rendered = render_spark_bundle(endpoint, dashboards)
    client().upload(
        "/api/v1/assets/import/",
        {"passwords": "{}", "overwrite": "true"},
        {"bundle": ("gridcredit_spark_assets.zip", bundle)},
    )
    return {
        kind: sorted(path.split("/")[-1].removesuffix(".yaml") for path in rendered if path.startswith(f"{kind}/"))
        for kind in ("databases", "datasets", "charts", "dashboards")
    }


# -- security spec -----------------------------------------------------------------------------
def regions(conn: warehouse.Connection) -> list[tuple[str, str]]:
    with psycopg.connect(conn.url) as pg:
        return [(str(code), str(name)) for code, name in pg.execute(REGIONS_QUERY)]


def region_role(code: str, name: str) -> str:
    return f"{REGION_ROLE_PREFIX}{name} ({code})"


def region_username(code: str) -> str:
    return f"manager_{code}"


def security_spec(
    conn: warehouse.Connection,
    files: dict[str, dict],
    extra_users: list[dict] | None = None,
    extra_roles: list[dict] | None = None,
) -> dict:
    """Roles, users and RLS filters: Admin, Analyst, Viewer and one regional manager role per region."""
    region_list = regions(conn)
    datasets = {path: doc for path, doc in files.items() if path.startswith("datasets/")}
    with_region = [
        doc["uuid"]
        for doc in datasets.values()
        if any(col.get("column_name") == REGION_COLUMN for col in doc.get("columns") or [])
        and doc["table_name"] not in REGION_SEGMENT_CLAUSES
    ]
    segment_templates: dict[str, list[str]] = {}
    for doc in datasets.values():
        if doc["table_name"] in REGION_SEGMENT_CLAUSES:
            segment_templates.setdefault(REGION_SEGMENT_CLAUSES[doc["table_name"]], []).append(doc["uuid"])
    all_datasets = [doc["uuid"] for doc in datasets.values()]
    data_access = [["all_datasource_access", "all_datasource_access"]]
    roles = [
        # Analyst: build charts and dashboards on every published dataset, SQL Lab (read-only: the
        # connection's role is read-only and allow_dml is off), no user or security administration.
        {"name": "Analyst", "base": ["alpha", "sql_lab"], "extra": [["database_access", WAREHOUSE_DATABASE_NAME]]},
        # Viewer: every dashboard, every region, no SQL Lab.
        {"name": "Viewer", "base": ["gamma"], "extra": data_access},
    ]
    for code, name in region_list:
        roles.append({"name": region_role(code, name), "base": ["gamma"], "extra": data_access})
    roles += extra_roles or []
    rls = [
        {
            # Everyone who is not Admin, Analyst or Viewer starts from "no rows"; regional filters in
            # the same group (OR) open their own region. A role nobody listed sees nothing.
            "name": "deny unless full access or a region role",
            "filter_type": "Base",
            "roles": list(FULL_ACCESS_ROLES),
            "datasets": all_datasets,
            "group_key": "region",
            "clause": "1 = 0",
            "description": "Base filter: no rows for any role other than Admin, Analyst and Viewer.",
        }
    ]
    for code, name in region_list:
        rls.append(
            {
                "name": f"region {code}",
                "filter_type": "Regular",
                "roles": [region_role(code, name)],
                "datasets": with_region,
                "group_key": "region",
                "clause": f"{REGION_COLUMN} = '{code}'",
                "description": f"Regional manager of {name}: rows of supply region {code} only.",
            }
        )
        for index, (template, uuids) in enumerate(sorted(segment_templates.items())):
            rls.append(
                {
                    "name": f"region {code} segments {index + 1}",
                    "filter_type": "Regular",
                    "roles": [region_role(code, name)],
                    "datasets": uuids,
                    "group_key": "region",
                    "clause": template.format(code=code),
                    "description": f"Regional manager of {name}: the region's own segment rows only.",
                }
            )
    users = [
        {"username": "analyst", "first_name": "Credit", "last_name": "Analyst", "roles": ["Analyst"]},
        {"username": "viewer", "first_name": "Risk", "last_name": "Viewer", "roles": ["Viewer"]},
    ]
    users += [
        {
            "username": region_username(code),
            "first_name": "Manager",
            "last_name": name,
            "roles": [region_role(code, name)],
        }
        for code, name in region_list
    ]
    users += extra_users or []
    for user in users:
        user.setdefault("password", _user_password(user["username"]))
    return {
        "roles": roles,
        "remove_roles_like": REGION_ROLE_PREFIX + "%",
        "users": users,
        "remove_users_like": region_username("%"),
        "rls": rls,
    }


def _ensure_whatif_tables(conn: warehouse.Connection) -> None:
    """The what-if tables exist before any simulation ran (`gridcredit policy simulate` fills them): the
    risk decisions dashboard's what-if datasets read them, and a dataset needs its table to import."""
    from gridcredit.decisions import whatif

    with psycopg.connect(conn.url, autocommit=True) as pg:
        whatif.ensure_schema(pg)


def provision(
    conn: warehouse.Connection, extra_users: list[dict] | None = None, extra_roles: list[dict] | None = None
) -> dict[str, Any]:
    """Grant the read-only role, import the assets bundle through the API, sync roles, users and RLS."""
    status = bi_status()
    if not status["healthy"]:
        raise BIError(f"Superset is not running at {status['url']}: start it with `gridcredit bi up`")
    _ensure_whatif_tables(conn)
    schemas = grant_reader(conn)
    bundle, passwords, files = render_bundle(conn)
    api = client()
    api.upload(
        "/api/v1/assets/import/",
        {"passwords": json.dumps(passwords), "overwrite": "true"},
        {"bundle": ("gridcredit_assets.zip", bundle)},
    )
    spec = security_spec(conn, files, extra_users, extra_roles)
    env = superset_env(conn)
    report = _bootstrap("security", spec, env)
    counts = {
        kind: sum(1 for path in files if path.startswith(f"{kind}/"))
        for kind in ("databases", "datasets", "charts", "dashboards")
    }
    return {"schemas": schemas, "imported": counts, "security": report}


# -- dbt exposures -------------------------------------------------------------------------------
# Schemas written outside dbt, declared as dbt sources of the same name: ML scores (`ml`) and what-if
# results (`whatif`, models/exposures/_whatif__sources.yml).
SOURCE_SCHEMAS = ("ml", "whatif")

def exposures(files: dict[str, dict] | None = None) -> dict:
    """dbt exposures: one per dashboard, depending on the models (or ML sources) its charts read."""
    files = files or load_assets()
    datasets = {doc["uuid"]: doc for path, doc in files.items() if path.startswith("datasets/")}
    charts = {doc["uuid"]: doc for path, doc in files.items() if path.startswith("charts/")}
    items = []
    for path, dashboard in sorted(files.items()):
        if not path.startswith("dashboards/"):
            continue
        tables = set()
        for node in dashboard["position"].values():
            if isinstance(node, dict) and node.get("type") == "CHART":
                dataset = datasets[charts[node["meta"]["uuid"]]["dataset_uuid"]]
                tables.add((dataset["schema"], dataset["table_name"]))
        depends_on = sorted(
            f"source('{schema}', '{table}')" if schema in SOURCE_SCHEMAS else f"ref('{table}')"
            for schema, table in tables
        )
        items.append(
            {
                "name": "superset_" + dashboard["slug"].replace("-", "_"),
                "label": dashboard["dashboard_title"],
                "type": "dashboard",
                "maturity": "medium",
                "url": f"http://127.0.0.1:8088/superset/dashboard/{dashboard['slug']}/",
                "description": (dashboard.get("description") or dashboard["dashboard_title"]).strip()
                + "\n\nProvisioned from superset/assets (`gridcredit bi provision`).",
                "depends_on": depends_on,
                "owner": {"name": "gridcredit BI", "email": "bi@gridcredit.invalid"},
            }
        )
    return {"version": 2, "exposures": items}


# dbt parses the exposures from here (models/exposures/), so `dbt docs` and `dbt ls --select +exposure:...`
# know which models each dashboard reads.
EXPOSURES_FILE = settings.DBT_PROJECT_DIR / "models" / "exposures" / "_superset__exposures.yml"


def exposures_text(files: dict[str, dict] | None = None) -> str:
    header = (
        "# dbt exposures of the Superset dashboards: generated from superset/assets by\n"
        "# `gridcredit bi exposures --write`; tests/test_bi.py checks it is current and that dbt parses it.\n"
    )
    return header + yaml.safe_dump(exposures(files), sort_keys=False, allow_unicode=True, width=110)


# -- the typer app (mounted by gridcredit/cli.py as `gridcredit bi`) ---------------------------------
app = typer.Typer(
    help="Superset: start, stop, provision dashboards, roles and row-level security.", no_args_is_help=True
)


def _fail(message: str) -> typer.Exit:
    console.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(1)


@app.command("up")
def up_command(
    provision_assets: Annotated[bool, typer.Option("--provision/--no-provision", help="Provision after start.")] = True,
) -> None:
    """Start Superset on 127.0.0.1 (metadata DB, migrations, admin, gunicorn) and provision it."""
    try:
        conn = warehouse.ensure_running()
        status = bi_up(conn)
        console.print(f"Superset up at {status['url']} (pid {status['pid']}, log {log_file()})")
        if provision_assets:
            result = provision(conn)
            console.print(f"provisioned: {result['imported']}")
    except (BIError, warehouse.WarehouseError) as error:
        raise _fail(str(error)) from error
    creds = credentials()
    console.print(f"log in at {creds['url']} as {creds['username']}: `gridcredit bi credentials` shows the password")


@app.command("down")
def down_command() -> None:
    """Stop Superset."""
    console.print("Superset stopped" if bi_down() else "Superset was not running")


@app.command("status")
def status_command() -> None:
    """Say whether Superset answers /health (exit 1 if not)."""
    status = bi_status()
    if status["healthy"]:
        console.print(f"Superset up at {status['url']} (pid {status['pid']})")
        return
    console.print(
        f"Superset NOT answering at {status['url']}" + (f" (pid {status['pid']} alive)" if status["pid"] else "")
    )
    raise typer.Exit(1)


@app.command("provision")
def provision_command() -> None:
    """Import superset/assets and sync roles, users and row-level security (idempotent)."""
    try:
        conn = warehouse.ensure_running()
        result = provision(conn)
    except (BIError, warehouse.WarehouseError) as error:
        raise _fail(str(error)) from error
    console.print(f"published schemas granted to {READER_ROLE}: {', '.join(result['schemas'])}")
    console.print(f"imported: {result['imported']}")
    changed = {
        kind: {name: state for name, state in items.items() if state != "unchanged"}
        for kind, items in result["security"].items()
    }
    console.print(f"security changes: {changed}")
    from gridcredit import spark

    if spark.engine() == "spark":
        try:
            imported = provision_spark(spark.current_endpoint())
        except (BIError, spark.SparkError) as error:
            raise _fail(str(error)) from error
        console.print(f"Spark engine: dashboards {', '.join(imported['dashboards'])} read {SPARK_DATABASE_NAME}")


@app.command("credentials")
def credentials_command(
    all_users: Annotated[bool, typer.Option("--all", help="Also the provisioned users' passwords.")] = False,
) -> None:
    """Print the URL, user and password of the local Superset."""
    creds = credentials()
    typer.echo(f"url:      {creds['url']}")
    typer.echo(f"user:     {creds['username']}")
    typer.echo(f"password: {creds['password']}")
    if all_users:
        for key, value in _read_secrets(secrets_file()).items():
            match = re.fullmatch(r"SUPERSET_PASSWORD_(.+)", key)
            if match:
                typer.echo(f"{match.group(1).lower()}: {value}")


@app.command("exposures")
def exposures_command(
    write: Annotated[bool, typer.Option("--write", help=f"Write {EXPOSURES_FILE.name} instead of printing.")] = False,
) -> None:
    """Print (or --write) the dbt exposures of the dashboards (dbt_project/models/exposures/)."""
    text = exposures_text()
    if write:
        EXPOSURES_FILE.write_text(text, encoding="utf-8")
        console.print(f"wrote {EXPOSURES_FILE.relative_to(PROJECT_ROOT)}")
    else:
        typer.echo(text, nl=False)
