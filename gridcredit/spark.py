"""Apache Spark as the transformation engine: a local standalone cluster, the engine setting, raw export.

PostgreSQL stays the default engine and the system of record for ingestion (validation, load
ledger, write-audit-publish, roles). With ``engine: spark`` (gridcredit.yaml) or
``GRIDCREDIT_ENGINE=spark`` the dbt project runs on a Spark Thrift server instead:

* ``gridcredit spark up`` starts a local standalone cluster from the PyPI ``pyspark`` distribution
  (a master and two workers on 127.0.0.1, worker memory capped, plus the Thrift server dbt-spark
  connects to); ``spark.thrift_url`` / ``GRIDCREDIT_SPARK_THRIFT_URL`` points at any existing
  Thrift endpoint instead (a real multi-node cluster), and then nothing is started locally.
* ``gridcredit spark sync`` exports the validated raw layer (``raw_*``, ``ops.load_ledger`` and the
  ML write-back ``ml.*``) from PostgreSQL to Parquet, partitioned by delivery month, and registers
  the files as Spark tables of the same names (docs/decisions/0092-spark-engine-raw-layer-exported-as-parquet.md).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from gridcredit import settings

ENGINES = ("postgres", "spark")


# The HMAC padded keys as hex (privacy.pg_options): 64 bytes = 128 hex digits. Pseudonyms are 64.
# The keys never reach Spark (personal columns are pseudonymised at export); the Thrift server still
# redacts anything of that shape from its statement logs, as a second line of defence.
KEY_REDACTION_REGEX = "[0-9a-fA-F]{128}"


class SparkError(RuntimeError):
    """The Spark cluster could not be started, reached or used."""


# -- settings --------------------------------------------------------------------------------------
def engine() -> str:
    """The engine dbt runs on: ``postgres`` (default) or ``spark``."""
    value = os.environ.get("GRIDCREDIT_ENGINE") or settings.project_config().get("engine") or "postgres"
    value = str(value).strip().lower()
    if value not in ENGINES:
        raise SparkError(
            f"engine must be one of {', '.join(ENGINES)} (gridcredit.yaml `engine:` / GRIDCREDIT_ENGINE), got {value!r}"
        )
    return value


@dataclass(frozen=True)
class SparkSettings:
    thrift_url: str | None  # an existing endpoint: thrift://host:port; None = the local cluster
    workers: int
    worker_cores: int
    worker_memory: str
    executor_memory: str
    driver_memory: str
    thrift_port: int  # 0 = any free port
    raw_location: Path | None  # where the raw Parquet files go; None = <GRIDCREDIT_HOME>/spark/raw


def spark_settings() -> SparkSettings:
    section = settings.project_config().get("spark", {}) or {}
    raw_location = os.environ.get("GRIDCREDIT_SPARK_RAW_LOCATION") or section.get("raw_location")
    return SparkSettings(
        thrift_url=os.environ.get("GRIDCREDIT_SPARK_THRIFT_URL") or section.get("thrift_url") or None,
        workers=int(section.get("workers", 2)),
        worker_cores=int(section.get("worker_cores", 1)),
        worker_memory=str(section.get("worker_memory", "2g")),
        executor_memory=str(section.get("executor_memory", "1g")),
        driver_memory=str(section.get("driver_memory", "1g")),
        thrift_port=int(os.environ.get("GRIDCREDIT_SPARK_PORT", section.get("thrift_port", 10000))),
        raw_location=Path(raw_location) if raw_location else None,
    )


@dataclass(frozen=True)
class Endpoint:
    """A Spark Thrift server (HiveServer2 protocol)."""

    host: str
    port: int

    @property
    def url(self) -> str:
        return f"thrift://{self.host}:{self.port}"

    def dbt_env(self) -> dict[str, str]:
        """Environment variables read by the `spark` output of dbt_project/profiles.yml."""
        return {
            "GRIDCREDIT_DBT_TARGET": "spark",
            "GRIDCREDIT_SPARK_HOST": self.host,
            "GRIDCREDIT_SPARK_PORT": str(self.port),
        }


def parse_thrift_url(url: str) -> Endpoint:
    parsed = urlparse(url)
    if parsed.scheme not in ("thrift", "hive", "sparksql") or not parsed.hostname:
        raise SparkError(f"Spark Thrift URL must look like thrift://host:10000, got {url!r}")
    return Endpoint(parsed.hostname, parsed.port or 10000)


def spark_home() -> Path:
    """The Spark distribution inside the pip-installed ``pyspark`` package (bin/, jars/)."""
    try:
        import pyspark
    except ImportError as error:  # pragma: no cover - depends on the install
        raise SparkError("pyspark is not installed: pip install -e '.[spark]'") from error
    home = Path(pyspark.__file__).resolve().parent
    if not (home / "bin" / "spark-class").exists():
        raise SparkError(f"{home} has no bin/spark-class: not a full pyspark distribution")
    return home


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:  # a zombie is not alive
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return True


# -- the local standalone cluster -----------------------------------------------------------------
class LocalCluster:
    """Master + workers + Thrift server on 127.0.0.1, from the pyspark distribution.

    Each daemon runs in its own process group (started detached), its pid and ports recorded in
    ``<home>/spark/cluster.json``; ``down`` signals exactly those process groups.
    """

    def __init__(self, home: Path | None = None, config: SparkSettings | None = None) -> None:
        self.base = (home or settings.home()) / "spark"
        self.config = config or spark_settings()

    @property
    def state_file(self) -> Path:
        return self.base / "cluster.json"

    def state(self) -> dict | None:
        try:
            return json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return None

    def endpoint(self) -> Endpoint | None:
        state = self.state()
        return Endpoint("127.0.0.1", state["thrift_port"]) if state else None

    def processes(self) -> dict[str, bool]:
        state = self.state() or {}
        return {name: _alive(pid) for name, pid in state.get("pids", {}).items()}

    def is_up(self) -> bool:
        state = self.state()
        if not state:
            return False
        alive = self.processes()
        return bool(alive) and all(alive.values()) and _port_open("127.0.0.1", state["thrift_port"])

    def _environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env["SPARK_HOME"] = str(spark_home())
        env["PYSPARK_PYTHON"] = sys.executable
        env["SPARK_LOCAL_IP"] = "127.0.0.1"
        env["SPARK_LOG_DIR"] = str(self.base / "logs")
        env["SPARK_PID_DIR"] = str(self.base / "run")
        env.setdefault("SPARK_NO_DAEMONIZE", "1")
        return env

    def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> int:
        log = (self.base / "logs" / f"{name}.log").open("ab")
        process = subprocess.Popen(
            args,
            cwd=self.base,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        return process.pid

    def up(self, timeout: float = 240, progress: Callable[[str], None] = print) -> Endpoint:
        if self.is_up():
            progress(f"spark cluster already up (thrift {self.endpoint().url})")
            return self.endpoint()
        self.down(quiet=True)
        for folder in ("logs", "run", "work", "warehouse", "tmp"):
            (self.base / folder).mkdir(parents=True, exist_ok=True)
        home = spark_home()
        env = self._environment()
        cfg = self.config
        master_port, master_ui = _free_port(), _free_port()
        thrift_port = (
            cfg.thrift_port if cfg.thrift_port and not _port_open("127.0.0.1", cfg.thrift_port) else _free_port()
        )
        master_url = f"spark://127.0.0.1:{master_port}"
        spark_class = str(home / "bin" / "spark-class")
        pids: dict[str, int] = {}
        state = {"master_url": master_url, "master_ui_port": master_ui, "thrift_port": thrift_port, "pids": pids}

        def save() -> None:
            self.state_file.write_text(json.dumps(state, indent=2))

        pids["master"] = self._spawn(
            "master",
            [
                spark_class,
                "org.apache.spark.deploy.master.Master",
                "--host",
                "127.0.0.1",
                "--port",
                str(master_port),
                "--webui-port",
                str(master_ui),
            ],
            env,
        )
        save()
        self._wait(lambda: _port_open("127.0.0.1", master_port), "master", pids["master"], timeout)
        progress(f"spark master up at {master_url} (ui http://127.0.0.1:{master_ui})")
        for index in range(1, cfg.workers + 1):
            work_dir = self.base / "work" / f"worker-{index}"
            work_dir.mkdir(parents=True, exist_ok=True)
            pids[f"worker-{index}"] = self._spawn(
                f"worker-{index}",
                [
                    spark_class,
                    "org.apache.spark.deploy.worker.Worker",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(_free_port()),
                    "--webui-port",
                    str(_free_port()),
                    "--cores",
                    str(cfg.worker_cores),
                    "--memory",
                    cfg.worker_memory,
                    "--work-dir",
                    str(work_dir),
                    master_url,
                ],
                env,
            )
            save()
        progress(f"{cfg.workers} workers started ({cfg.worker_cores} core, {cfg.worker_memory} each)")
        metastore = self.base / "metastore_db"
        pids["thrift"] = self._spawn(
            "thrift",
            [
                str(home / "bin" / "spark-submit"),
                "--class",
                "org.apache.spark.sql.hive.thriftserver.HiveThriftServer2",
                "--name",
                "gridcredit-thrift",
                "--master",
                master_url,
                "--driver-memory",
                cfg.driver_memory,
                "--conf",
                f"spark.executor.memory={cfg.executor_memory}",
                "--conf",
                f"spark.cores.max={cfg.workers * cfg.worker_cores}",
                "--conf",
                f"spark.sql.warehouse.dir={self.base / 'warehouse'}",
                "--conf",
                f"spark.local.dir={self.base / 'tmp'}",
                "--conf",
                "spark.ui.enabled=false",
                "--conf",
                "spark.sql.shuffle.partitions=4",
                "--conf",
                "spark.sql.session.timeZone=UTC",
                # The Thrift server logs each statement after variable substitution: redact the
                # pseudonymisation keys (128 hex digits, docs/SPARK.md) from what it logs.
                "--conf",
                f"spark.sql.redaction.string.regex={KEY_REDACTION_REGEX}",
                "--conf",
                f"spark.driver.extraJavaOptions=-Dderby.system.home={self.base}",
                "--conf",
                f"spark.hadoop.javax.jdo.option.ConnectionURL=jdbc:derby:;databaseName={metastore};create=true",
                "--hiveconf",
                f"hive.server2.thrift.port={thrift_port}",
                "--hiveconf",
                "hive.server2.thrift.bind.host=127.0.0.1",
                "--hiveconf",
                f"hive.server2.logging.operation.log.location={self.base / 'logs' / 'operations'}",
                "spark-internal",
            ],
            env,
        )
        save()
        self._wait(lambda: _port_open("127.0.0.1", thrift_port), "thrift", pids["thrift"], timeout)
        endpoint = Endpoint("127.0.0.1", thrift_port)
        self._wait(lambda: answers(endpoint), "thrift (first query)", pids["thrift"], timeout)
        progress(f"spark thrift server up at {endpoint.url}")
        return endpoint

    def _wait(self, ready: Callable[[], bool], name: str, pid: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready():
                return
            if not _alive(pid):
                self.down(quiet=True)
                raise SparkError(f"spark {name} exited during start; see {self.base / 'logs'}")
            time.sleep(0.5)
        self.down(quiet=True)
        raise SparkError(f"spark {name} not ready after {timeout:.0f} s; see {self.base / 'logs'}")

    def down(self, quiet: bool = False, timeout: float = 30) -> bool:
        state = self.state()
        if not state:
            return False
        # Thrift server first (it holds executors on the workers), then workers, then the master.
        order = sorted(state.get("pids", {}).items(), key=lambda item: {"thrift": 0, "master": 2}.get(item[0], 1))
        stopped = False
        for _name, pid in order:
            if not _alive(pid):
                continue
            stopped = True
            _signal_group(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            if _alive(pid):
                _signal_group(pid, signal.SIGKILL)
        self.state_file.unlink(missing_ok=True)
        return stopped


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)  # started with start_new_session: pid is its group id
    except OSError:
        try:
            os.kill(pid, sig)
        except OSError:
            pass


# -- talking to a Thrift server --------------------------------------------------------------------
@contextmanager
def connect(endpoint: Endpoint) -> Iterator:
    """A PyHive cursor on the Thrift server (the same driver dbt-spark's thrift method uses)."""
    from pyhive import hive

    connection = hive.connect(
        host=endpoint.host, port=endpoint.port, username=os.environ.get("GRIDCREDIT_SPARK_USER", "gridcredit")
    )
    try:
        cursor = connection.cursor()
        yield cursor
        cursor.close()
    finally:
        connection.close()


def fetch_rows(cursor, statement: str) -> tuple[list[str], list[tuple]]:
    """Column names and rows of a query on a PyHive cursor, with Python types restored: the Thrift
    protocol carries decimals, dates and timestamps as strings."""
    import datetime as dt
    from decimal import Decimal

    cursor.execute(statement)
    description = cursor.description or []
    converters = []
    for _name, type_code, *_ in description:
        kind = str(type_code).upper()
        if kind.startswith("DECIMAL"):
            converters.append(Decimal)
        elif kind.startswith("DATE"):
            converters.append(dt.date.fromisoformat)
        elif kind.startswith("TIMESTAMP"):
            converters.append(dt.datetime.fromisoformat)
        else:
            converters.append(None)
    rows = [
        tuple(
            value if value is None or convert is None or not isinstance(value, str) else convert(value)
            for value, convert in zip(row, converters, strict=True)
        )
        for row in cursor.fetchall()
    ]
    return [column[0].split(".")[-1] for column in description], rows


def answers(endpoint: Endpoint) -> bool:
    try:
        with connect(endpoint) as cursor:
            cursor.execute("select 1")
            return cursor.fetchall() == [(1,)]
    except Exception:  # noqa: BLE001 - any failure means "not yet"
        return False


def raw_location(home: Path | None = None) -> Path:
    """Where the raw Parquet files go (must be readable by the cluster: a shared path on a real one)."""
    return spark_settings().raw_location or (home or settings.home()) / "spark" / "raw"


def current_endpoint(home: Path | None = None) -> Endpoint:
    """The configured Thrift endpoint, or the running local cluster's."""
    config = spark_settings()
    if config.thrift_url:
        return parse_thrift_url(config.thrift_url)
    endpoint = LocalCluster(home).endpoint()
    if endpoint is None or not LocalCluster(home).is_up():
        raise SparkError(
            "no Spark Thrift server: run `gridcredit spark up` or set spark.thrift_url / GRIDCREDIT_SPARK_THRIFT_URL"
        )
    return endpoint


def ensure_endpoint(home: Path | None = None) -> Endpoint:
    """The configured endpoint, starting the local cluster when none is configured."""
    config = spark_settings()
    if config.thrift_url:
        return parse_thrift_url(config.thrift_url)
    cluster = LocalCluster(home)
    return cluster.endpoint() if cluster.is_up() else cluster.up()


# -- the raw layer as Parquet -----------------------------------------------------------------------
# PostgreSQL type -> (Arrow type factory, Spark SQL type). Raw extract columns are all text.
def _column_types(pg_type: str):
    import pyarrow as pa

    if pg_type in ("text", "character varying", "json", "jsonb") or pg_type.startswith(("character", "varchar")):
        return pa.string(), "string"
    if pg_type == "bigint":
        return pa.int64(), "bigint"
    if pg_type in ("integer", "smallint"):
        return pa.int32(), "int"
    if pg_type == "boolean":
        return pa.bool_(), "boolean"
    if pg_type in ("double precision", "real"):
        return pa.float64(), "double"
    if pg_type == "date":
        return pa.date32(), "date"
    if pg_type.startswith("timestamp"):
        return pa.timestamp("us"), "timestamp"
    if pg_type.startswith("numeric"):
        precision, scale = 38, 10
        if "(" in pg_type:
            precision, scale = (int(part) for part in pg_type[pg_type.index("(") + 1 : -1].split(","))
        return pa.decimal128(precision, scale), f"decimal({precision},{scale})"
    raise SparkError(f"no Spark type for PostgreSQL type {pg_type!r}")


# Which PostgreSQL tables the Spark engine reads: the raw layer, the load ledger and the manifests' month
# totals (dbt sources of ops), the ML write-back (not the pickled models: nothing on Spark reads them)
# and the analysts' override store (decisions.credit_overrides; PostgreSQL stays its system of record).
_EXPORTED_TABLES = """
select n.nspname, c.relname
from pg_class as c
join pg_namespace as n on n.oid = c.relnamespace
where c.relkind in ('r', 'p') and not c.relispartition
    and (n.nspname like 'raw\\_%' or (n.nspname = 'ml' and c.relname <> 'model_artifacts')
        or (n.nspname = 'ops' and c.relname in ('load_ledger', 'manifest_month_totals'))
        or (n.nspname = 'decisions' and c.relname = 'credit_overrides'))
order by 1, 2
"""

_COLUMNS = """
select a.attname, format_type(a.atttypid, a.atttypmod)
from pg_attribute as a
where a.attrelid = %s::regclass and a.attnum > 0 and not a.attisdropped
order by a.attnum
"""

PARTITION_COLUMN = "_load_month"
# Version of the exported layout; an export in an older one is redone from scratch (2: personal
# columns pseudonymised or withheld).
EXPORT_FORMAT = 2
# The pseudonym of an identifying personal column travels next to it as `<column>_pseudonym` (what the
# `spark__pseudonymise` macro reads); the column itself leaves PostgreSQL masked.
PSEUDONYM_SUFFIX = "_pseudonym"
# Identifying columns whose birth-year digits (7-10) and sex digit (17) staging reads
# (stg_billing__customers: birth_year, gender); every other character leaves PostgreSQL masked.
_ID_ATTRIBUTES_KEPT = {("raw_billing", "customers", "id_number")}
# Checks that mark an identifying number (contract.yaml): pseudonymised; other personal columns are withheld.
_IDENTIFYING_CHECKS = {"resident_id", "uscc", "resident_id_or_uscc"}
WITHHELD = "(withheld)"


def personal_columns(schema: str, table: str) -> dict[str, str]:
    """Personal columns of a raw table (``personal: true`` in ingestion/contract.yaml) and how the
    Spark export treats each: ``pseudonymised`` (identifying numbers: masked, plus the keyed pseudonym
    computed by PostgreSQL) or ``withheld`` (names, phones, addresses, e-mails: empty stays empty,
    anything else becomes ``(withheld)``, enough for staging's has_phone / has_email)."""
    from gridcredit.ingestion.contract import load_contract

    for spec in load_contract().tables:
        if spec.raw_schema == schema and spec.name == table:
            return {
                column.name: "pseudonymised" if column.check in _IDENTIFYING_CHECKS else "withheld"
                for column in spec.columns
                if column.personal
            }
    return {}


def _exported_columns(schema: str, table: str, names: list[str]) -> list[tuple[str, str]]:
    """(output column, PostgreSQL expression over `raw`) of the export: clear personal values never
    leave PostgreSQL. Pseudonyms as dbt's default__pseudonymise computes them (same key, same
    `purged:` rule), so both engines hold the same pseudonyms; the session must carry the keys
    (privacy.pg_options)."""
    from gridcredit import privacy

    treatment = personal_columns(schema, table)
    out: list[tuple[str, str]] = []
    for column in names:
        value = f'raw."{column}"'
        kind = treatment.get(column)
        if kind is None:
            out.append((column, value))
        elif kind == "withheld":
            out.append((column, f"case when {value} is null or {value} = '' then {value} else '{WITHHELD}' end"))
        else:
            kept = (
                f"when length({value}) = 18 then '******' || substring({value} from 7 for 4) || '******' "
                f"|| substring({value} from 17 for 1) || '*' "
                if (schema, table, column) in _ID_ATTRIBUTES_KEPT
                else ""
            )
            masked = f"case when {value} is null or {value} = '' then {value} {kept}"
            masked += f"else repeat('*', length({value})) end"
            out.append((column, masked))
            out.append(
                (
                    column + PSEUDONYM_SUFFIX,
                    f"case when {value} is null or {value} = '' then null "
                    f"when {value} like 'purged:%' then substring({value} from 8) "
                    f"else {privacy.PSEUDONYM_SQL.format(x=value)} end",
                )
            )
    return out


def _require_pseudonym_keys(pg) -> None:
    ikey, okey = pg.execute(
        "select current_setting('gridcredit.pseudonym_ikey', true), current_setting('gridcredit.pseudonym_okey', true)"
    ).fetchone()
    if not (ikey and okey and len(ikey) == len(okey) == 128):
        raise SparkError(
            "the export pseudonymises personal columns in PostgreSQL: connect with the pseudonym keys "
            "(privacy.pg_options(), as `gridcredit spark sync` does)"
        )


def export_to_spark(
    pg, run_sql: Callable[[str], object], location: Path, progress: Callable[[str], None] = print
) -> dict[str, int]:
    """Copy the raw layer, the load ledger and ``ml.*`` from PostgreSQL to Parquet and register them.

    Raw tables (``raw_<system>.<table>``, one PostgreSQL partition per load) land under
    ``<location>/<schema>/<table>/_load_month=YYYY-MM/`` (the delivery month of the load, from the
    ledger), one file set per load named after its load id; only loads not exported yet are written,
    and rewriting a load overwrites the same files, so a rerun after a crash gives the same result.
    The ledger and the ML tables are small and rewritten whole. ``run_sql`` runs one Spark SQL
    statement (a Thrift cursor or a SparkSession). Returns rows written per table.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.dataset as ds

    _require_pseudonym_keys(pg)
    location = location.resolve()
    location.mkdir(parents=True, exist_ok=True)
    exported_file = location / "_exported_loads.json"
    exported = json.loads(exported_file.read_text()) if exported_file.exists() else {}
    if exported.get("_format") != EXPORT_FORMAT:  # exported before personal columns were pseudonymised
        exported = {"_format": EXPORT_FORMAT}
    written: dict[str, int] = {}
    tables = pg.execute(_EXPORTED_TABLES).fetchall()
    for schema, table in tables:
        name = f"{schema}.{table}"
        columns = pg.execute(_COLUMNS, (f'"{schema}"."{table}"',)).fetchall()
        types = {column: _column_types(pg_type) for column, pg_type in columns}
        outputs = _exported_columns(schema, table, [column for column, _ in columns])
        names = [column for column, _ in outputs]
        for column in names:
            types.setdefault(column, _column_types("text"))  # the pseudonyms
        per_load = schema.startswith("raw_") and "_load_id" in names
        target = location / schema / table
        select_list = ", ".join(
            f"({expression} at time zone 'UTC') as \"{column}\""
            if types[column][1] == "timestamp"
            else f'{expression} as "{column}"'
            for column, expression in outputs
        )
        if per_load:
            since = int(exported.get(name, 0))
            if not since:  # first export (or an older export format): start the table afresh
                shutil.rmtree(target, ignore_errors=True)
                run_sql(f"create database if not exists `{schema}`")
                run_sql(f"drop table if exists `{schema}`.`{table}`")
            query = (
                f"select {select_list}, coalesce(substring(ledger.last_month from 1 for 7), 'unknown') "
                f'as {PARTITION_COLUMN} from "{schema}"."{table}" as raw '
                f"join ops.load_ledger as ledger on ledger.load_id = raw._load_id where raw._load_id > {since}"
            )
            newest = pg.execute(f'select coalesce(max(_load_id), 0) from "{schema}"."{table}"').fetchone()[0]
            # A rerun after a crash rewrites this export's files from scratch (same names).
            for stale in target.glob(f"*/load-since-{since}-*.parquet"):
                stale.unlink()
        else:
            query = f'select {select_list} from "{schema}"."{table}" as raw'
            shutil.rmtree(target, ignore_errors=True)
        arrow_schema = pa.schema(
            [(column, types[column][0]) for column in names] + ([(PARTITION_COLUMN, pa.string())] if per_load else [])
        )
        rows = 0
        with tempfile.NamedTemporaryFile(suffix=".csv", dir=location) as csv_file:
            with pg.cursor().copy(f"copy ({query}) to stdout with (format csv, header true)") as copy:
                for block in copy:
                    csv_file.write(block)
            csv_file.flush()
            reader = pacsv.open_csv(
                csv_file.name,
                read_options=pacsv.ReadOptions(block_size=16 << 20),
                convert_options=pacsv.ConvertOptions(
                    column_types=arrow_schema,
                    strings_can_be_null=True,
                    quoted_strings_can_be_null=False,
                    true_values=["t"],  # PostgreSQL's CSV spelling of booleans
                    false_values=["f"],
                ),
            )
            batches = (batch for batch in reader if batch.num_rows)
            counted = []

            def count(batches=batches, counted=counted):
                for batch in batches:
                    counted.append(batch.num_rows)
                    yield batch

            ds.write_dataset(
                pa.RecordBatchReader.from_batches(reader.schema, count()),
                target,
                format="parquet",
                partitioning=ds.partitioning(pa.schema([(PARTITION_COLUMN, pa.string())]), flavor="hive")
                if per_load
                else None,
                basename_template=(f"load-since-{since}-{{i}}.parquet" if per_load else "part-{i}.parquet"),
                existing_data_behavior="overwrite_or_ignore",
            )
            rows = sum(counted)
        target.mkdir(parents=True, exist_ok=True)
        spark_columns = ", ".join(f"`{column}` {types[column][1]}" for column in names)
        run_sql(f"create database if not exists `{schema}`")
        if per_load:
            run_sql(
                f"create table if not exists `{schema}`.`{table}` ({spark_columns}, `{PARTITION_COLUMN}` string) "
                f"using parquet partitioned by (`{PARTITION_COLUMN}`) location '{target.as_uri()}'"
            )
            run_sql(f"msck repair table `{schema}`.`{table}`")
            exported[name] = int(newest)
        else:
            run_sql(f"drop table if exists `{schema}`.`{table}`")
            run_sql(f"create table `{schema}`.`{table}` ({spark_columns}) using parquet location '{target.as_uri()}'")
        run_sql(f"refresh table `{schema}`.`{table}`")
        exported_file.write_text(json.dumps(exported, indent=2, sort_keys=True))
        written[name] = rows
        progress(f"spark: {name}: {rows:,} rows exported")
    return written


# -- Spark inside this process (tests, development) ---------------------------------------------------
def local_session(base: Path, cores: int = 2, driver_memory: str = "2g"):
    """A SparkSession in this process (local mode) with its metastore and tables under ``base``.

    dbt-spark's ``session`` method (profile output ``spark_session``) calls
    ``SparkSession.builder.getOrCreate()``, so a dbt invocation in the same process (dbtRunner)
    builds into this session's catalog.
    """
    from pyspark.sql import SparkSession

    base = base.resolve()
    base.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("SPARK_HOME", str(spark_home()))
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    return (
        SparkSession.builder.master(f"local[{cores}]")
        .appName("gridcredit-session")
        .config("spark.driver.memory", driver_memory)
        .config("spark.sql.warehouse.dir", str(base / "warehouse"))
        .config("spark.local.dir", str(base / "tmp"))
        .config("spark.driver.extraJavaOptions", f"-Dderby.system.home={base}")
        .config(
            "spark.hadoop.javax.jdo.option.ConnectionURL",
            f"jdbc:derby:;databaseName={base / 'metastore_db'};create=true",
        )
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.sql.session.timeZone", "UTC")
        .enableHiveSupport()
        .getOrCreate()
    )


# -- comparing the marts of two engines ----------------------------------------------------------------
def normalised_rows(rows) -> list[list[str | None]]:
    """Rows as JSON-safe cells comparable across engines: numbers as exact decimal strings prefixed
    "n:", dates and timestamps ISO, booleans "true"/"false", NULL as None; sorted with
    ``comparison_key`` (numbers rounded to 2 places for the order only)."""
    import datetime as dt
    from decimal import Decimal

    def cell(item):
        if item is None:
            return None
        if isinstance(item, bool):
            return str(item).lower()
        if isinstance(item, int | float | Decimal):
            return "n:" + str(Decimal(repr(item)) if isinstance(item, float) else Decimal(item))
        if isinstance(item, dt.datetime) and item.tzinfo is not None:  # timestamptz: compare in UTC
            return item.astimezone(dt.UTC).replace(tzinfo=None).isoformat()
        if isinstance(item, dt.datetime | dt.date):
            return item.isoformat()
        return str(item)

    return sorted(([cell(item) for item in row] for row in rows), key=comparison_key)


def comparison_key(row: list[str | None]) -> tuple:
    from decimal import ROUND_HALF_UP, Decimal

    def part(value):
        if value is None:
            return (0, "")
        if value.startswith("n:"):
            return (1, str(Decimal(value[2:]).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP) + 0))
        return (1, value)

    return tuple(part(value) for value in row)


def rows_differences(expected, actual, tolerance: str = "0.0001") -> list[tuple]:
    """Pairs of rows (expected, actual) that differ, after ``normalised_rows`` on both sides.

    Numbers are equal when |a - b| <= tolerance * max(1, |a|): PostgreSQL's numeric keeps ~20 digits
    in a division where Spark's decimal keeps 6, and float sums depend on the order of addition.
    Everything else must be equal exactly. A different row count is one difference.
    """
    from decimal import Decimal

    limit = Decimal(tolerance)
    if len(expected) != len(actual):
        return [(f"{len(expected)} rows", f"{len(actual)} rows")]

    def same(left, right) -> bool:
        if left is None or right is None or not (left.startswith("n:") and right.startswith("n:")):
            return left == right
        a, b = Decimal(left[2:]), Decimal(right[2:])
        return abs(a - b) <= limit * max(Decimal(1), abs(a))

    return [
        (want, got)
        for want, got in zip(expected, actual, strict=True)
        if len(want) != len(got) or not all(same(a, b) for a, b in zip(want, got, strict=True))
    ]


def rows_checksum(rows, places: int = 2) -> str:
    """sha256 of the normalised rows in order, numbers rounded half-up to ``places`` (for reports)."""
    import hashlib
    from decimal import ROUND_HALF_UP, Decimal

    digest = hashlib.sha256()
    quantum = Decimal(1).scaleb(-places)
    for row in normalised_rows(rows):
        cells = [
            str(Decimal(value[2:]).quantize(quantum, rounding=ROUND_HALF_UP) + 0)
            if value and value.startswith("n:")
            else value
            for value in row
        ]
        digest.update(repr(cells).encode())
    return digest.hexdigest()


# -- benchmark hook ------------------------------------------------------------------------------------
def timed_build(
    pg_url: str,
    dbt_commands: tuple[str, ...] = ("seed", "run --selector before_scoring"),
    home: Path | None = None,
    progress: Callable[[str], None] = print,
) -> dict[str, float]:
    """Seconds per step of a dbt build on the Spark engine, for `make bench` (the Spark column).

    Uses spark.thrift_url when set, else the local cluster (started here if down and stopped again
    afterwards). Steps: cluster start, raw-layer export from ``pg_url`` (the database the PostgreSQL
    build used, so both columns build the same rows), then each dbt command on the `spark` target.
    Returns {"cluster_start_s", "export_s", "<dbt command>_s", ..., "total_s"}.
    On one small machine these figures show Spark's overhead, not a speed-up (docs/SPARK.md).
    """
    import psycopg

    from gridcredit import privacy

    timings: dict[str, float] = {}
    started = time.monotonic()
    cluster = None if spark_settings().thrift_url else LocalCluster(home)
    started_here = cluster is not None and not cluster.is_up()
    endpoint = ensure_endpoint(home)
    timings["cluster_start_s"] = round(time.monotonic() - started, 1)
    try:
        step = time.monotonic()
        with psycopg.connect(pg_url, options=privacy.pg_options()) as pg, connect(endpoint) as cursor:
            export_to_spark(pg, cursor.execute, raw_location(home), progress=progress)
        timings["export_s"] = round(time.monotonic() - step, 1)

        # No pseudonym key: Spark receives pseudonyms, never clear identifying values (export_to_spark).
        env = dict(os.environ, DBT_PROFILES_DIR=str(settings.DBT_PROJECT_DIR), **endpoint.dbt_env())
        env.pop(privacy.KEY_ENV, None)
        dbt = str(Path(sys.executable).with_name("dbt"))
        for command in dbt_commands:
            step = time.monotonic()
            target = (home or settings.home()) / "spark" / "bench-target"
            subprocess.run(
                [dbt, *command.split(), "--target-path", str(target), "--log-path", str(target / "logs")],
                cwd=settings.DBT_PROJECT_DIR,
                env=env,
                check=True,
            )
            timings[f"{command}_s"] = round(time.monotonic() - step, 1)
    finally:
        if started_here:
            cluster.down()
    timings["total_s"] = round(time.monotonic() - started, 1)
    return timings


__all__ = [
    "ENGINES",
    "Endpoint",
    "LocalCluster",
    "SparkError",
    "SparkSettings",
    "connect",
    "current_endpoint",
    "engine",
    "ensure_endpoint",
    "timed_build",
    "local_session",
    "normalised_rows",
    "rows_checksum",
    "raw_location",
    "answers",
    "export_to_spark",
    "fetch_rows",
    "parse_thrift_url",
    "personal_columns",
    "spark_home",
    "spark_settings",
]
