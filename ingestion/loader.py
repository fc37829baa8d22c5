"""Load an extract folder (``manifest.json`` + CSV files) into the raw tables.

One transaction per file: ledger row, new partition ``raw_<system>.<table>__load_<id>``, COPY (while
a second thread validates the same file with Arrow), rejects, ATTACH PARTITION and the ledger's final
counts commit together, so a kill at any moment leaves either the whole file or nothing. See
``ingestion/README.md``.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import hashlib
import io
import json
import re
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
from psycopg import errors as pg_errors
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from gridcredit import faults, settings, warehouse

from . import arrow_validation, validation
from .contract import Contract, TableSpec, load_contract
from .validation import sql_ident, sql_literal

CHUNK = 1 << 20  # bytes per COPY write
DETECT_BYTES = 4 << 20  # bytes read to detect the encoding
MAX_REASONS_IN_MESSAGE = 5
MAX_REJECTS_KEPT_FOR_FAILED = 1000
BOM = codecs.BOM_UTF8

# Encoding names accepted on the command line / in the manifest -> (Python codec, PostgreSQL name).
ENCODINGS = {
    "utf-8": ("utf-8", "UTF8"),
    "utf8": ("utf-8", "UTF8"),
    "utf-8-sig": ("utf-8", "UTF8"),
    "gb18030": ("gb18030", "GB18030"),
    "gbk": ("gbk", "GBK"),
    "cp936": ("gbk", "GBK"),
}

LEDGER_DDL = """
create schema if not exists ops;
create table if not exists ops.load_ledger (
    load_id bigint generated always as identity primary key,
    system text not null,
    table_name text not null,
    file_path text not null,
    file_sha256 text,
    file_bytes bigint,
    schema_version text,
    extract_kind text,
    first_month text,
    last_month text,
    encoding text,
    status text not null check (status in ('loaded', 'failed')),
    rows_read bigint,
    rows_loaded bigint,
    rows_rejected bigint,
    started_at timestamptz not null,
    finished_at timestamptz,
    duration_s numeric(12, 3),
    message text
);
create unique index if not exists load_ledger_loaded_once
    on ops.load_ledger (system, table_name, file_sha256) where status = 'loaded';
create table if not exists ops.load_rejects (
    load_id bigint not null,
    file_path text not null,
    line_number bigint not null,
    field text,
    reason text not null,
    raw_line text
);
create index if not exists load_rejects_by_load on ops.load_rejects (load_id, line_number);
-- The manifest's totals per month as delivered (file entry `month_totals`), with what the load
-- refused of them: dbt reconciles them with the raw tables and the marts (fct_reconciliation_months).
-- month null: rejected lines whose month cannot be read.
create table if not exists ops.manifest_month_totals (
    load_id bigint not null,
    month text,
    column_name text not null,
    manifest_rows bigint not null,
    manifest_total numeric not null,
    rejected_rows bigint not null,
    rejected_total numeric not null,
    rejected_unreadable_rows bigint not null
);
create unique index if not exists manifest_month_totals_key
    on ops.manifest_month_totals (load_id, column_name, coalesce(month, ''));
-- One round trip starts a file's load: the ledger row and the new partition (or, when the file's
-- checksum is already loaded, that load's id and nothing else).
create or replace function ops.start_load(
    p_system text, p_table text, p_file_path text, p_sha256 text, p_bytes bigint,
    p_schema_version text, p_kind text, p_first_month text, p_last_month text, p_encoding text,
    p_started_at timestamptz, p_raw_schema text,
    out load_id bigint, out already_loaded boolean)
language plpgsql as $fn$
declare
    v_part text;
begin
    select l.load_id into load_id from ops.load_ledger l
    where l.system = p_system and l.table_name = p_table and l.file_sha256 = p_sha256
      and l.status = 'loaded';
    already_loaded := found;
    if found then
        return;
    end if;
    insert into ops.load_ledger (system, table_name, file_path, file_sha256, file_bytes,
        schema_version, extract_kind, first_month, last_month, encoding, status, started_at)
    values (p_system, p_table, p_file_path, p_sha256, p_bytes, p_schema_version, p_kind,
        p_first_month, p_last_month, p_encoding, 'loaded', p_started_at)
    returning ops.load_ledger.load_id into load_id;
    v_part := p_table || '__load_' || load_id;
    execute format('create table %I.%I (like %I.%I, constraint %I check (_load_id = %s))',
                   p_raw_schema, v_part, p_raw_schema, p_table, v_part || '_check', load_id);
    execute format('alter table %I.%I alter column _load_id set default %s',
                   p_raw_schema, v_part, load_id);
end
$fn$;
"""


_MONTH_LABEL = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")


class IngestError(RuntimeError):
    """The extract cannot be loaded (bad manifest) or at least one file failed."""


class _FileFailed(Exception):
    def __init__(self, reasons: list[str], *, rows_read: int = 0, rows_rejected: int = 0,
                 rejects: list[tuple] | None = None) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons
        self.rows_read = rows_read
        self.rows_rejected = rows_rejected
        self.rejects = rejects or []


class _Structural(Exception):
    """COPY met a line it cannot parse (or Arrow reads the file differently): line-by-line path."""

    def __init__(self, message: str, bad_encoding: bool = False) -> None:
        super().__init__(message)
        self.bad_encoding = bad_encoding


@dataclass
class FileResult:
    file: str
    system: str
    table: str
    status: str  # loaded | failed | already loaded
    load_id: int | None = None
    rows_read: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    seconds: float = 0.0
    encoding: str | None = None
    path: str = "fast"  # fast (COPY) or slow (line by line)
    message: str = ""
    reasons: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase (profiling)

    @property
    def rows_per_s(self) -> float:
        return self.rows_read / self.seconds if self.seconds > 0 else 0.0


@dataclass
class IngestSummary:
    directory: Path
    kind: str
    schema_version: str
    files: list[FileResult]
    seconds: float = 0.0

    @property
    def failed(self) -> list[FileResult]:
        return [f for f in self.files if f.status == "failed"]

    @property
    def loaded(self) -> list[FileResult]:
        return [f for f in self.files if f.status == "loaded"]

    @property
    def already_loaded(self) -> list[FileResult]:
        return [f for f in self.files if f.status == "already loaded"]

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def rows_loaded(self) -> int:
        return sum(f.rows_loaded for f in self.files)

    @property
    def rows_rejected(self) -> int:
        return sum(f.rows_rejected for f in self.files)


@dataclass(frozen=True)
class _Extract:
    directory: Path
    manifest: dict[str, Any]
    schema_version: str
    kind: str


# -- manifest ----------------------------------------------------------------------------------
def read_manifest(directory: Path, contract: Contract) -> _Extract:
    path = directory / "manifest.json"
    if not directory.is_dir():
        raise IngestError(f"{directory} is not a folder")
    if not path.is_file():
        raise IngestError(f"{path} not found: an extract folder holds manifest.json and its CSV files")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise IngestError(f"{path} is not valid JSON: {error}") from error
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise IngestError(f"{path} has no 'files' object")
    version = str(manifest.get("schema_version", ""))
    if version not in contract.schema_versions_supported:
        raise IngestError(
            f"{path}: schema_version {version or '(missing)'} is not supported "
            f"(supported: {', '.join(contract.schema_versions_supported)})"
        )
    kind = str(manifest.get("kind", "full"))
    if kind not in ("full", "increment"):
        raise IngestError(f"{path}: kind must be 'full' or 'increment', not {kind!r}")
    return _Extract(directory, manifest, version, kind)


# -- encoding ----------------------------------------------------------------------------------
def normalise_encoding(name: str) -> tuple[str, str]:
    key = name.strip().lower().replace("_", "-")
    if key not in ENCODINGS:
        raise IngestError(f"unsupported encoding {name!r} (use one of {', '.join(ENCODINGS)})")
    return ENCODINGS[key]


def detect_encoding(path: Path) -> tuple[str, str]:
    """UTF-8 BOM or valid UTF-8 (in the first 4 MiB) -> UTF-8, else GB18030."""
    with path.open("rb") as handle:
        head = handle.read(DETECT_BYTES)
    if head.startswith(BOM):
        return ENCODINGS["utf-8"]
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=len(head) < DETECT_BYTES)
    except UnicodeDecodeError:
        return ENCODINGS["gb18030"]
    return ENCODINGS["utf-8"]


# -- header ------------------------------------------------------------------------------------
def _no_nul(value: str | None) -> str | None:
    return value.replace("\x00", "\\x00") if value else value


def read_header(path: Path, codec: str) -> tuple[list[str], int]:
    """The header's column names and the number of bytes before the header (a BOM: 3, else 0)."""
    with path.open("rb") as handle:
        first = handle.readline(1 << 16)
    skip = 0
    if codec == "utf-8" and first.startswith(BOM):
        first, skip = first[len(BOM):], len(BOM)
    try:
        text = first.decode(codec).rstrip("\r\n")
    except UnicodeDecodeError as error:
        raise _FileFailed([f"header line cannot be decoded as {codec}"]) from error
    if not text.strip():
        raise _FileFailed(["header line is empty"])
    if "," not in text:
        for delimiter, label in ((";", "';'"), ("\t", "tab"), ("|", "'|'")):
            if delimiter in text:
                raise _FileFailed([f"wrong delimiter: the header is separated by {label}, "
                                   "the contract requires ','"])
    try:
        names = next(csv.reader([text]))
    except csv.Error as error:  # e.g. a stray carriage return inside the header line
        raise _FileFailed([f"header line is not valid CSV ({error})"]) from error
    return [n.strip() for n in names], skip


def check_header(table: TableSpec, names: list[str], schema_version: str) -> None:
    known = set(table.column_names)
    reasons = []
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        reasons.append(f"duplicate columns in header: {', '.join(duplicates)}")
    unexpected = [n for n in names if n not in known]
    if unexpected:
        reasons.append(f"unexpected columns: {', '.join(unexpected)}")
    missing = [c.name for c in table.columns
               if c.name not in names and not c.optional_in(schema_version)]
    if missing:
        reasons.append(f"missing required columns: {', '.join(missing)}")
    if reasons:
        raise _FileFailed(reasons)


# -- schema ------------------------------------------------------------------------------------
def _raw(table: TableSpec) -> str:
    return f"{sql_ident(table.raw_schema)}.{sql_ident(table.name)}"


def _partition_name(table: TableSpec, load_id: int) -> str:
    return f"{table.name}__load_{load_id}"


def ensure_schema(pg: psycopg.Connection, contract: Contract, work_as: str | None = None) -> None:
    """Create ops and raw tables idempotently; add columns the contract gained since.

    The load ledger (ops, the warehouse owner's schema) is set up as the login role; with
    ``work_as`` (a stage of :func:`gridcredit.access.work_as`) the session then switches to that
    role, which creates the raw tables it will own and load (partitions attach only by their owner).
    """
    with pg.transaction():
        pg.execute(LEDGER_DDL)
    if work_as:
        from gridcredit import access

        access.work_as(pg, work_as)
    with pg.transaction():
        existing: dict[tuple[str, str], set[str]] = {}
        for schema, name, column in pg.execute(
            "select table_schema, table_name, column_name from information_schema.columns "
            "where table_schema like 'raw\\_%'"
        ):
            existing.setdefault((schema, name), set()).add(column)
        for table in contract.tables:
            columns = existing.get((table.raw_schema, table.name))
            if columns is None:
                defs = ", ".join(f"{sql_ident(c)} text" for c in table.column_names)
                pg.execute(f"create schema if not exists {sql_ident(table.raw_schema)}")
                pg.execute(
                    f"create table if not exists {_raw(table)} ({defs}, "
                    "_load_id bigint not null, _line_number bigint not null) "
                    "partition by list (_load_id)"
                )
            else:
                for name in table.column_names:
                    if name not in columns:
                        pg.execute(f"alter table {_raw(table)} add column if not exists "
                                   f"{sql_ident(name)} text")


# -- reading -----------------------------------------------------------------------------------
def fetch_lines(path: Path, line_numbers: Iterable[int], codec: str) -> dict[int, str]:
    """The text of the given physical lines (1 = header), without line ending.

    Counts newlines chunk by chunk (C speed) and only walks the chunks holding a wanted line.
    """
    wanted = sorted(set(line_numbers))
    found: dict[int, str] = {}
    index = 0
    line = 1  # number of the line starting at the beginning of `data`
    carry = b""
    with path.open("rb") as handle:
        while index < len(wanted):
            chunk = handle.read(CHUNK)
            if not chunk:
                if carry and wanted[index] == line:
                    found[line] = _decode_line(carry, codec)
                break
            data = carry + chunk
            complete = data.count(b"\n")  # lines line .. line + complete - 1 end in data
            if wanted[index] >= line + complete:
                carry = data[data.rfind(b"\n") + 1:]
                line += complete
                continue
            position = 0
            for _ in range(complete):
                end = data.index(b"\n", position)
                if index < len(wanted) and wanted[index] == line:
                    found[line] = _decode_line(data[position:end], codec)
                    index += 1
                line += 1
                position = end + 1
            carry = data[position:]
    return found


def _decode_line(raw: bytes, codec: str) -> str:
    if raw.startswith(BOM):
        raw = raw[len(BOM):]
    return raw.rstrip(b"\r").decode(codec, errors="replace")


def _file_digest(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


# -- the loader --------------------------------------------------------------------------------
@dataclass
class _FileJob:
    table: TableSpec
    rel: str
    path: Path
    entry: dict[str, Any]
    codec: str = "utf-8"
    pg_encoding: str = "UTF8"
    encoding_explicit: bool = False
    header: list[str] = field(default_factory=list)
    skip: int = 0


class _Loader:
    def __init__(self, pg: psycopg.Connection, extract: _Extract, contract: Contract,
                 encoding: str | None, console: Console, max_reject_rate: float,
                 default_encoding: str | None) -> None:
        self.pg = pg
        self.extract = extract
        self.contract = contract
        self.encoding = encoding
        self.default_encoding = default_encoding
        self.console = console
        self.max_reject_rate = max_reject_rate

    # -- per file ------------------------------------------------------------------------------
    def load(self, table: TableSpec, rel: str, entry: dict[str, Any],
             progress: _ProgressHook) -> FileResult:
        started = time.monotonic()
        result = FileResult(file=rel, system=table.system, table=table.name, status="failed")
        job = _FileJob(table, rel, self.extract.directory / rel, entry)
        started_at = dt.datetime.now(dt.UTC)
        try:
            self._prepare(job)
            result.encoding = job.pg_encoding
            # One transaction per file, its statements merged where they can be: under load each
            # round trip waits for the server to be scheduled, a good part of a small file's time.
            try:
                load_id, already = self._start(job, started_at)
                if already:
                    self._already_loaded(job, result, load_id)
                    self.pg.rollback()
                    result.seconds = time.monotonic() - started
                    return result
                self._load_in_transaction(job, result, load_id, started_at, started, progress)
                self.pg.commit()
            except BaseException:
                _rollback(self.pg)
                raise
            result.timings["commit"] = time.monotonic() - started - result.seconds
            result.seconds = time.monotonic() - started
        except _FileFailed as failure:
            result.status = "failed"
            result.reasons = failure.reasons
            result.rows_read = failure.rows_read
            result.rows_rejected = failure.rows_rejected
            result.rows_loaded = 0
            result.seconds = time.monotonic() - started
            result.message = "; ".join(failure.reasons)
            result.load_id = self._record_failure(job, result, started_at, failure.rejects)
        return result

    def _prepare(self, job: _FileJob) -> None:
        entry = job.entry
        if not isinstance(entry, dict):
            raise _FileFailed(["manifest entry is not an object"])
        for key in ("rows", "sha256", "bytes"):
            if key not in entry:
                raise _FileFailed([f"manifest entry has no '{key}'"])
        if (entry.get("system"), entry.get("table")) != (job.table.system, job.table.name):
            raise _FileFailed([
                f"manifest contradiction: the manifest says {entry.get('system')}.{entry.get('table')}, "
                f"the contract puts {job.table.qualified} at {job.rel}"])
        if not job.path.is_file():
            raise _FileFailed([f"listed in manifest.json but missing: {job.path}"])
        chosen = (self.encoding or entry.get("encoding") or self.extract.manifest.get("encoding")
                  or self.default_encoding)
        if chosen:
            try:
                job.codec, job.pg_encoding = normalise_encoding(str(chosen))
            except IngestError as error:
                raise _FileFailed([str(error)]) from error
            job.encoding_explicit = True
        else:
            job.codec, job.pg_encoding = detect_encoding(job.path)
        job.header, job.skip = read_header(job.path, job.codec)
        check_header(job.table, job.header, self.extract.schema_version)

    def _start(self, job: _FileJob, started_at: Any) -> tuple[int, bool]:
        """Begin the file's transaction: (load id, already loaded) in one round trip (BEGIN and
        ``ops.start_load`` pipelined): the ledger row and the empty partition, unless the file's
        checksum is already loaded."""
        table, entry = job.table, job.entry
        with self.pg.pipeline():
            row = self.pg.execute(
                "select load_id, already_loaded from ops.start_load(%s, %s, %s, %s, %s, %s, %s, %s, "
                "%s, %s, %s, %s)",
                [table.system, table.name, str(job.path.resolve()), str(entry["sha256"]),
                 _int_or_none(entry["bytes"]), self.extract.schema_version, self.extract.kind,
                 self.extract.manifest.get("first_month"), self.extract.manifest.get("last_month"),
                 job.pg_encoding, started_at, table.raw_schema],
            ).fetchone()
        return int(row[0]), bool(row[1])

    def _already_loaded(self, job: _FileJob, result: FileResult, load_id: int) -> None:
        digest, size = _file_digest(job.path)
        if digest != job.entry["sha256"] or size != job.entry["bytes"]:
            raise _FileFailed([f"file contradicts manifest: sha256 {digest[:12]}…/{size} bytes, "
                               f"manifest says {str(job.entry['sha256'])[:12]}…/{job.entry['bytes']} bytes"])
        result.status = "already loaded"
        result.load_id = load_id
        result.message = f"already loaded (load {load_id})"

    def _load_in_transaction(self, job: _FileJob, result: FileResult, load_id: int, started_at: Any,
                             started: float, progress: _ProgressHook) -> None:
        pg, table, entry = self.pg, job.table, job.entry
        result.load_id = load_id
        clock = [time.perf_counter()]

        def lap(name: str) -> None:
            now = time.perf_counter()
            result.timings[name] = result.timings.get(name, 0.0) + now - clock[0]
            clock[0] = now

        def restart() -> int:
            """Roll the attempt back (ledger row and partition) and start the file again."""
            pg.rollback()
            new_id, already = self._start(job, started_at)
            assert not already
            result.load_id = new_id
            return new_id

        # Fast path: COPY the numbered lines while Arrow validates the file in a second thread; on a
        # structural error (or if Arrow reads the file differently), the line-by-line path.
        slow = None
        fast = None
        try:
            fast = self._copy_fast(job, self._part(table, load_id), load_id, progress)
        except _Structural as error:
            if error.bad_encoding and not job.encoding_explicit and job.pg_encoding == "UTF8":
                job.codec, job.pg_encoding = ENCODINGS["gb18030"]
                load_id = restart()
                try:
                    fast = self._copy_fast(job, self._part(table, load_id), load_id, progress)
                except _Structural as again:
                    error = again
                else:
                    error = None
            if error is not None:
                load_id = restart()
                result.path = "slow"
                slow = self._copy_slow(job, self._part(table, load_id), load_id, progress, str(error))
        part = self._part(table, load_id)
        if fast is not None:
            rows_read, digest, size = fast.rows, fast.digest, fast.size
            result.timings["validate (overlapped)"] = fast.check.seconds
            result.timings["validate cpu"] = fast.check.cpu
            result.timings["copy client cpu"] = fast.client_cpu
        else:
            rows_read, digest, size = slow.rows_read, slow.digest, slow.size
        result.encoding = job.pg_encoding
        lap("copy")

        reasons = []
        if size != int(entry["bytes"]) or digest != entry["sha256"]:
            reasons.append(f"file contradicts manifest: sha256 {digest[:12]}…/{size} bytes, "
                           f"manifest says {str(entry['sha256'])[:12]}…/{entry['bytes']} bytes")
        elif rows_read != int(entry["rows"]):
            reasons.append(f"body contradicts manifest: {rows_read} data lines, "
                           f"manifest says {entry['rows']}")
        if reasons:
            raise _FileFailed(reasons, rows_read=rows_read)

        rejects: list[tuple[int, str | None, str, str | None]] = []  # line, field, reason, raw
        totals: dict[str, tuple[Decimal, bool]] = {}
        keep = arrow_validation.bound_lines(rows_read, self.max_reject_rate, MAX_REJECTS_KEPT_FOR_FAILED)
        if fast is not None:
            check = fast.check
            if check.quoted_lines:  # what COPY stored decides for lines with quotes inside values
                columns = ", ".join(sql_ident(c) for c in job.header)
                check.recheck(table, pg.execute(
                    f"select _line_number, {columns} from {part} where _line_number = any(%s) "
                    "order by 1", [check.quoted_lines]).fetchall())
            rejects.extend((line, fld, reason, None) for line, fld, reason in check.rejects)
            totals = {c: (t.value, t.complete) for c, t in check.totals.items()}
            duplicates, duplicate_lines = self._duplicates(
                table, part, check.duplicate_candidates() if check.hashed_all else None, keep)
            if check.kept_all:
                rejected_count = len({r[0] for r in check.rejects} | set(duplicate_lines.tolist()))
            else:  # a failing file: the bad lines beyond the kept sample are counted in bit sets
                rejected_count = check.bad_lines + int((~check.is_bad(duplicate_lines)).sum())
        else:
            rejects.extend(slow.rejects)
            totals = slow.totals
            duplicates, duplicate_lines = self._duplicates(table, part, None, keep)
            rejected_count = len({r[0] for r in slow.rejects} | set(duplicate_lines.tolist()))
        rejects.extend((line, None, validation.DUPLICATE.format(first=first), None)
                       for line, first in duplicates)
        lap("validate")
        rejected_lines = sorted({r[0] for r in rejects})
        if rejected_count <= rows_read * self.max_reject_rate and rejected_count != len(rejected_lines):
            raise RuntimeError("validation kept too few rejects for a file that loads")  # pragma: no cover
        missing_raw = [r[0] for r in rejects if r[3] is None]
        if rejected_count / max(rows_read, 1) > self.max_reject_rate:  # only the kept sample
            missing_raw = sorted(set(missing_raw))[:MAX_REJECTS_KEPT_FOR_FAILED]
        raw_lines = fetch_lines(job.path, missing_raw, job.codec) if missing_raw else {}
        rejects = sorted(((line, fld, reason, raw if raw is not None else raw_lines.get(line))
                          for line, fld, reason, raw in rejects), key=lambda r: (r[0], r[1] or ""))
        result.rows_read = rows_read
        result.rows_rejected = rejected_count
        result.rows_loaded = rows_read - rejected_count

        if rows_read and rejected_count / rows_read > self.max_reject_rate:
            raise _FileFailed(
                [f"{rejected_count} of {rows_read} lines rejected "
                 f"({rejected_count / rows_read:.1%} > max_reject_rate "
                 f"{self.max_reject_rate:.1%})", *self._first_reasons(job, rejects)],
                rows_read=rows_read, rows_rejected=rejected_count, rejects=rejects)

        notes = []
        for column, (total, complete) in totals.items():
            expected = (entry.get("totals") or {}).get(column)
            if expected is None:
                continue
            if not complete:
                notes.append(f"totals check of {column} skipped: a line's value is missing or unreadable")
                continue
            try:
                expected_value = Decimal(str(expected))
            except InvalidOperation:
                raise _FileFailed([f"manifest totals of {column} is not a number"],
                                  rows_read=rows_read) from None
            if total != expected_value:
                raise _FileFailed(
                    [f"body contradicts manifest: sum of {column} is {total}, "
                     f"manifest says {expected}"],
                    rows_read=rows_read, rows_rejected=rejected_count, rejects=rejects)

        self._store_month_totals(load_id, job, part, rejected_lines)
        if rejects:
            self._store_rejects(load_id, job, rejects)
            pg.execute(f"delete from {part} where _line_number = any(%s)", [rejected_lines])
        lap("rejects")
        result.status = "loaded"
        result.seconds = time.monotonic() - started
        if rejects:
            notes.insert(0, f"{rejected_count} lines rejected: "
                         + "; ".join(self._first_reasons(job, rejects)))
        if result.path == "slow":
            notes.append(f"line-by-line path: {slow.cause}")
        result.message = "; ".join(notes)
        result.reasons = self._first_reasons(job, rejects) if rejects else []
        # ATTACH and the ledger's counts in one round trip (literals: ints and a quoted message).
        message = sql_literal(result.message) if result.message else "null"
        pg.execute(
            f"alter table {_raw(table)} attach partition {part} for values in ({load_id}); "
            f"update ops.load_ledger set rows_read = {int(result.rows_read)}, "
            f"rows_loaded = {int(result.rows_loaded)}, rows_rejected = {int(result.rows_rejected)}, "
            f"finished_at = clock_timestamp(), duration_s = {round(result.seconds, 3)}, "
            f"message = {message} where load_id = {int(load_id)}")
        lap("attach")

    # -- COPY ----------------------------------------------------------------------------------
    @staticmethod
    def _part(table: TableSpec, load_id: int) -> str:
        """The load's partition (created by ``ops.start_load``)."""
        return f"{sql_ident(table.raw_schema)}.{sql_ident(_partition_name(table, load_id))}"

    def _copy_fast(self, job: _FileJob, part: str, load_id: int, progress: _ProgressHook) -> _Fast:
        columns = ", ".join(sql_ident(c) for c in job.header)
        digest = hashlib.sha256()
        validator = _Validator(job, arrow_validation.bound_lines(
            _int_or_none(job.entry.get("rows")), self.max_reject_rate, MAX_REJECTS_KEPT_FOR_FAILED))
        progress.start(job)
        try:
            # The partition was created in this transaction, so COPY FREEZE is allowed, and with
            # wal_level=minimal the COPY skips WAL. Any failure here rolls the whole attempt back.
            with self.pg.cursor() as cur:
                reader = _Reader(job.path, job.skip, digest, progress)
                cpu = time.thread_time()
                with cur.copy(f"copy {part} (_line_number, {columns}) from stdin with (format csv, "
                              f"freeze true, encoding {sql_literal(job.pg_encoding)})") as copy:
                    for piece in reader.numbered():
                        copy.write(piece)
                rows = cur.rowcount
                copy_cpu = time.thread_time() - cpu
                check = validator.outcome()  # a divergence raises inside the savepoint: rolled back
                if check.rows != rows:
                    raise arrow_validation.Divergence(
                        f"Arrow read {check.rows} data lines, COPY {rows}")
        except (pg_errors.BadCopyFileFormat, pg_errors.CharacterNotInRepertoire,
                pg_errors.UntranslatableCharacter, pg_errors.InvalidTextRepresentation,
                pg_errors.StringDataRightTruncation) as error:
            validator.cancel()
            bad_encoding = isinstance(error, pg_errors.CharacterNotInRepertoire | pg_errors.UntranslatableCharacter)
            raise _Structural(str(error.diag.message_primary or type(error).__name__), bad_encoding) from None
        except arrow_validation.Divergence as error:
            raise _Structural(f"fast validation cannot read the file like COPY: {error}") from None
        except BaseException:
            validator.cancel()
            raise
        return _Fast(rows, digest.hexdigest(), reader.size, check, copy_cpu)

    def _copy_slow(self, job: _FileJob, part: str, load_id: int, progress: _ProgressHook,
                   cause: str) -> _SlowResult:
        table = job.table
        specs = [table.column(name) for name in job.header]
        width = len(job.header)
        totals_idx = {c: job.header.index(c) for c in table.totals if c in job.header}
        result = _SlowResult(cause=cause, totals={c: (Decimal(0), True) for c in totals_idx})
        sums = {c: Decimal(0) for c in totals_idx}
        complete = dict.fromkeys(totals_idx, True)
        digest = hashlib.sha256()
        columns = ", ".join(sql_ident(c) for c in [*job.header, "_line_number"])
        progress.start(job)
        with self.pg.cursor() as cur:
            with cur.copy(f"copy {part} ({columns}) from stdin") as copy, \
                    job.path.open("rb") as handle:
                for number, raw in enumerate(_hashing_lines(handle, digest, progress), start=1):
                    result.size += len(raw)
                    if number == 1:
                        continue
                    result.rows_read += 1
                    line = raw.rstrip(b"\n").rstrip(b"\r")
                    text = None
                    try:
                        text = line.decode(job.codec)
                    except UnicodeDecodeError:
                        result.rejects.append((number, None, f"cannot be decoded as {job.pg_encoding}",
                                               line.decode(job.codec, errors="replace")))
                        _incomplete(complete)
                        continue
                    if text == "":
                        result.rejects.append((number, None, "empty line", text))
                        _incomplete(complete)
                        continue
                    try:
                        fields = next(csv.reader([text], strict=True))
                    except csv.Error:
                        result.rejects.append((number, None, "malformed CSV line (unterminated quote?)", text))
                        _incomplete(complete)
                        continue
                    if len(fields) != width:
                        result.rejects.append((number, None, f"expected {width} fields, found {len(fields)}", text))
                        _incomplete(complete)
                        continue
                    values = [v if v != "" else None for v in fields]
                    for column, index in totals_idx.items():
                        amount = validation.parse_decimal(values[index])
                        if amount is None:
                            complete[column] = False
                        else:
                            sums[column] += amount
                    bad = False
                    for spec, value in zip(specs, values, strict=True):
                        reason = validation.validate_value(spec, value)
                        if reason:
                            result.rejects.append((number, spec.name, reason, text))
                            bad = True
                    if not bad:
                        copy.write_row([*values, number])
        result.digest = digest.hexdigest()
        result.totals = {c: (sums[c], complete[c]) for c in totals_idx}
        return result

    # -- validation ----------------------------------------------------------------------------
    def _duplicates(self, table: TableSpec, part: str, candidates: np.ndarray | None,
                    limit: int) -> tuple[list[tuple[int, int]], np.ndarray]:
        """Second and later occurrences of a key within the file: (line, first line) of the first
        ``limit`` of them, and the line numbers of all of them.

        ``candidates``: the lines whose key hash another line shares (fast path): only those rows
        are compared, on the values COPY stored. ``None``: every row with a complete key.
        """
        none = np.zeros(0, dtype=np.int64)
        if not table.key or (candidates is not None and not candidates.size):
            return [], none
        keys = ", ".join(sql_ident(k) for k in table.key)
        if candidates is not None:
            where, params = "_line_number = any(%s)", [candidates.tolist()]
        else:
            where = " and ".join(f"{sql_ident(k)} is not null and {sql_ident(k)} <> ''" for k in table.key)
            params = []
        lines, pairs = self.pg.execute(
            f"with d as (select _line_number as line, min(_line_number) over (partition by {keys}) "
            f"as first from {part} where {where}) "
            "select (select string_agg(int8send(line), ''::bytea order by line) from d where line > first), "
            "(select array_agg(array[line, first] order by line) from (select line, first from d "
            "where line > first order by line limit %s) p)", [*params, limit]).fetchone()
        if lines is None:
            return [], none
        return [(int(a), int(b)) for a, b in pairs], np.frombuffer(lines, dtype=">i8").astype(np.int64)

    def _store_month_totals(self, load_id: int, job: _FileJob, part: str, rejected_lines: list[int]) -> None:
        """Keep the manifest's per-month totals (and the part of them this load refused)."""
        table, declared = job.table, job.entry.get("month_totals")
        if not declared or not table.totals_month:
            return
        months = declared.get("months") if isinstance(declared, dict) else None
        if declared.get("column") != table.totals_month or not isinstance(months, dict):
            raise _FileFailed([f"manifest month_totals must split by {table.totals_month} "
                               "and list months"])
        columns = [c for c in table.totals if c in job.header]
        figures: dict[tuple[str | None, str], list] = {}
        for month, values in months.items():
            try:
                if not _MONTH_LABEL.fullmatch(str(month)) or not isinstance(values, dict):
                    raise InvalidOperation
                for column in columns:
                    figures[(str(month), column)] = [int(values["rows"]), Decimal(str(values[column])),
                                                     0, Decimal(0), 0]
            except (InvalidOperation, KeyError, ValueError, TypeError):
                raise _FileFailed([f"manifest month_totals of {month!r} is not rows and totals by month"]) from None
        if rejected_lines:  # the refused lines' share, read from the partition before they go
            month_col = sql_ident(table.totals_month)
            for column in columns:
                value = sql_ident(column)
                readable = (f"{value} ~ '^ *[-+]?[0-9]{{1,15}}([.][0-9]{{1,6}})? *$'"
                            f" and {month_col} ~ '^[0-9]{{4}}-(0[1-9]|1[0-2])'")
                found = self.pg.execute(
                    f"select case when {readable} then left({month_col}, 7) end, count(*),"
                    f" coalesce(sum(case when {readable} then cast({value} as numeric) end), 0)"
                    f" from {part} where _line_number = any(%s) group by 1", [rejected_lines]).fetchall()
                unreadable = len(rejected_lines) - sum(rows for month, rows, _ in found if month)
                for month, rows, total in found:
                    if month:
                        entry = figures.setdefault((month, column), [0, Decimal(0), 0, Decimal(0), 0])
                        entry[2] += rows
                        entry[3] += total
                if unreadable:
                    figures[(None, column)] = [0, Decimal(0), 0, Decimal(0), unreadable]
        with self.pg.cursor() as cur, cur.copy(
            "copy ops.manifest_month_totals (load_id, month, column_name, manifest_rows, manifest_total,"
            " rejected_rows, rejected_total, rejected_unreadable_rows) from stdin"
        ) as copy:
            for (month, column), values in sorted(figures.items(), key=lambda item: (item[0][0] or "", item[0][1])):
                copy.write_row([load_id, month, column, *values])

    def _store_rejects(self, load_id: int, job: _FileJob, rejects: list[tuple]) -> None:
        with self.pg.cursor() as cur, cur.copy(
            "copy ops.load_rejects (load_id, file_path, line_number, field, reason, raw_line) "
            "from stdin"
        ) as copy:
            for line, fld, reason, raw in rejects:
                # PostgreSQL text cannot hold NUL: a rejected line keeps it visibly escaped.
                copy.write_row([load_id, job.rel, line, fld, _no_nul(reason), _no_nul(raw)])

    def _first_reasons(self, job: _FileJob, rejects: list[tuple]) -> list[str]:
        """Up to five reasons for messages, personal values masked."""
        out = []
        for line, fld, reason, raw in rejects[:MAX_REASONS_IN_MESSAGE]:
            value = None
            if fld is not None and raw is not None and fld in job.header:
                try:
                    fields = next(csv.reader([raw]))
                    value = fields[job.header.index(fld)]
                except (csv.Error, IndexError, StopIteration):
                    value = None
            if fld is None:
                out.append(f"line {line}: {reason}")
            else:
                shown = validation.mask_value(job.table.column(fld), value)
                shown = "" if shown is None else shown
                out.append(f"line {line} {fld}={shown!r}: {reason}")
        return out

    def _record_failure(self, job: _FileJob, result: FileResult, started_at: Any,
                        rejects: list[tuple]) -> int | None:
        """The failed ledger row (and a sample of rejects) in its own short transaction."""
        self.pg.rollback()
        entry = job.entry if isinstance(job.entry, dict) else {}
        try:
            with self.pg.transaction():
                load_id = self.pg.execute(
                    "insert into ops.load_ledger (system, table_name, file_path, file_sha256, "
                    "file_bytes, schema_version, extract_kind, first_month, last_month, encoding, "
                    "status, rows_read, rows_loaded, rows_rejected, started_at, finished_at, "
                    "duration_s, message) values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'failed', "
                    "%s, 0, %s, %s, clock_timestamp(), %s, %s) returning load_id",
                    [job.table.system, job.table.name, str(job.path), _str_or_none(entry.get("sha256")),
                     _int_or_none(entry.get("bytes")), self.extract.schema_version, self.extract.kind,
                     self.extract.manifest.get("first_month"), self.extract.manifest.get("last_month"),
                     result.encoding, result.rows_read, result.rows_rejected, started_at,
                     round(result.seconds, 3), result.message],
                ).fetchone()[0]
                if rejects:
                    self._store_rejects(load_id, job, rejects[:MAX_REJECTS_KEPT_FOR_FAILED])
            return load_id
        except psycopg.Error as error:  # pragma: no cover - the database went away
            self.console.print(f"[yellow]could not record the failure in ops.load_ledger: "
                               f"{error.diag.message_primary}[/]")
            return None


class _Reader:
    """The file's bytes for COPY, hashed (sha256, size) as they are read."""

    def __init__(self, path: Path, skip: int, digest: Any, progress: _ProgressHook) -> None:
        self.path, self.skip, self.digest, self.progress = path, skip, digest, progress
        self.size = 0

    def _read(self) -> Iterator[bytes]:
        with self.path.open("rb") as handle:
            while chunk := handle.read(CHUNK):
                self.digest.update(chunk)
                self.size += len(chunk)
                self.progress.advance(len(chunk))
                yield chunk

    def chunks(self) -> Iterator[bytes]:
        """The bytes as they are (after a UTF-8 BOM)."""
        first = True
        for chunk in self._read():
            yield chunk[self.skip:] if first and self.skip else chunk
            first = False

    def numbered(self) -> Iterator[memoryview]:
        """The data lines (header dropped), each prefixed with its line number and a comma: COPY
        stores ``_line_number`` from the data instead of evaluating a default per row (~30 % of
        the COPY's server time). Lines are split at ``\\n`` only: a quoted line break would be cut,
        but Arrow refuses such files (Divergence) and the savepoint is rolled back. Blocks are
        views of the chunks: only a line cut by a chunk boundary is copied."""
        carry = b""
        line = None  # number of the first line in the next block; None until the header is passed
        for chunk in self.chunks():
            start = 0
            if line is None:
                data = carry + chunk
                end = data.find(b"\n")
                if end < 0:
                    carry = data
                    continue
                chunk, carry, line = data[end + 1:], b"", 2
            elif carry:  # the line cut by the previous chunk's end, alone (no copy of the chunk)
                end = chunk.find(b"\n")
                if end < 0:
                    carry += chunk
                    continue
                numbered, count = _number_lines(carry + chunk[:end + 1], line)
                yield numbered
                line += count
                carry, start = b"", end + 1
            end = chunk.rfind(b"\n", start)
            if end < 0:
                carry = chunk[start:]
                continue
            numbered, count = _number_lines(memoryview(chunk)[start:end + 1], line)
            yield numbered
            line += count
            carry = chunk[end + 1:]
        if carry and line is not None:
            yield _number_lines(carry, line)[0]


_COMMA = arrow_validation.scalar(b",")


def _prefix_lines(block: bytes | memoryview, first: int) -> memoryview:
    """``block``'s lines, each prefixed with ``<number>,`` (numbers from ``first``), built by Arrow:
    the lines as a binary array over ``block`` (offsets at the line starts, no copy), the numbers
    cast to text, one ``binary_join_element_wise``."""
    return _number_lines(block, first)[0]


def _number_lines(block: bytes | memoryview, first: int) -> tuple[memoryview, int]:
    """:func:`_prefix_lines` and the number of lines."""
    data = np.frombuffer(block, dtype=np.uint8)
    ends = np.flatnonzero(data == 10)
    count = ends.size + (1 if ends.size == 0 or ends[-1] != data.size - 1 else 0)
    offsets = np.empty(count + 1, dtype=np.int32)  # a block is a few MiB at most
    offsets[0] = 0
    offsets[1:ends.size + 1] = ends + 1
    offsets[-1] = data.size
    lines = pa.Array.from_buffers(pa.binary(), count, [None, pa.py_buffer(offsets), pa.py_buffer(block)])
    numbers = np.arange(first, first + count, dtype=np.int64)
    numbers = pc.cast(pa.Array.from_buffers(pa.int64(), count, [None, pa.py_buffer(numbers)]),
                      pa.string()).cast(pa.binary())
    joined = pc.binary_join_element_wise(numbers, lines, _COMMA)
    bounds = np.frombuffer(joined.buffers()[1], dtype=np.int32, count=count + 1, offset=joined.offset * 4)
    return memoryview(joined.buffers()[2])[int(bounds[0]):int(bounds[-1])], count


@dataclass
class _Fast:
    rows: int
    digest: str
    size: int
    check: arrow_validation.FileOutcome
    client_cpu: float  # seconds of this thread's CPU while streaming (read, sha256, numbering)


class _Validator:
    """:class:`arrow_validation.FileCheck` of one file in a second thread (numpy and Arrow release
    the GIL), overlapping the COPY that runs on the server."""

    def __init__(self, job: _FileJob, keep_lines: int) -> None:
        self._check = arrow_validation.FileCheck(job.table, job.header, keep_lines=keep_lines)
        self._stop = threading.Event()
        self._result: arrow_validation.FileOutcome | None = None
        self._error: BaseException | None = None
        self._path, self._codec = job.path, job.codec
        self._thread = threading.Thread(target=self._run, name=f"validate {job.rel}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        began = time.perf_counter()
        cpu = time.thread_time()
        try:
            self._result = self._check.run(self._path, self._codec, self._stop)
            self._result.seconds = time.perf_counter() - began
            self._result.cpu = time.thread_time() - cpu
        except BaseException as error:  # handed to the loader's thread
            self._error = error

    def outcome(self) -> arrow_validation.FileOutcome:
        """The validation's outcome; :class:`arrow_validation.Divergence` if it failed in any way
        (the line-by-line path then loads the file: slower, never wrong)."""
        self._thread.join()
        error = self._error
        if error is None:
            assert self._result is not None
            return self._result
        if isinstance(error, Exception) and not isinstance(error, arrow_validation.Divergence):
            raise arrow_validation.Divergence(f"{type(error).__name__}: {error}") from error
        raise error

    def cancel(self) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class _SlowResult:
    cause: str
    rows_read: int = 0
    size: int = 0
    digest: str = ""
    rejects: list[tuple] = field(default_factory=list)
    totals: dict[str, tuple[Decimal, bool]] = field(default_factory=dict)


def _incomplete(complete: dict[str, bool]) -> None:
    for column in complete:
        complete[column] = False


def _hashing_lines(handle: io.BufferedReader, digest: Any, progress: _ProgressHook) -> Iterator[bytes]:
    carry = b""
    while chunk := handle.read(CHUNK):
        digest.update(chunk)
        progress.advance(len(chunk))
        data = carry + chunk
        lines = data.split(b"\n")
        carry = lines.pop()
        for line in lines:
            yield line + b"\n"
    if carry:
        yield carry


def _rollback(pg: psycopg.Connection) -> None:
    try:
        pg.rollback()
    except psycopg.Error:  # pragma: no cover - the connection is gone; the server rolls back
        pass


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# -- progress and summary ----------------------------------------------------------------------
class _ProgressHook:
    """Rows/s per file on a terminal (estimated from bytes and the manifest's rows/bytes)."""

    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress
        self.task = None
        self.rows_per_byte = 0.0
        self.done = 0
        self.began = time.monotonic()

    def start(self, job: _FileJob) -> None:
        if self.progress is None:
            return
        total = max(int(job.entry.get("bytes") or job.path.stat().st_size), 1)
        self.rows_per_byte = int(job.entry.get("rows") or 0) / total
        self.done = 0
        self.began = time.monotonic()
        if self.task is None:
            self.task = self.progress.add_task(job.rel, total=total, rows=0, rate=0)
        self.progress.reset(self.task, total=total, description=job.rel, rows=0, rate=0)

    def advance(self, nbytes: int) -> None:
        if self.progress is None or self.task is None:
            return
        self.done += nbytes
        rows = self.done * self.rows_per_byte
        elapsed = max(time.monotonic() - self.began, 1e-6)
        self.progress.update(self.task, completed=self.done, rows=rows, rate=rows / elapsed)


def _summary_table(summary: IngestSummary) -> Table:
    table = Table(title=f"ingest {summary.directory} ({summary.kind}, schema {summary.schema_version})")
    for name, justify in (("file", "left"), ("rows read", "right"), ("loaded", "right"),
                          ("rejected", "right"), ("seconds", "right"), ("rows/s", "right"),
                          ("status", "left")):
        table.add_column(name, justify=justify)
    for f in summary.files:
        style = {"loaded": "green", "failed": "bold red"}.get(f.status, "dim")
        table.add_row(f.file, f"{f.rows_read:,}", f"{f.rows_loaded:,}", f"{f.rows_rejected:,}",
                      f"{f.seconds:.2f}", f"{f.rows_per_s:,.0f}", f"[{style}]{f.status}[/]")
    table.add_row("total", f"{sum(f.rows_read for f in summary.files):,}", f"{summary.rows_loaded:,}",
                  f"{summary.rows_rejected:,}", f"{summary.seconds:.2f}", "", "", style="bold")
    return table


# -- entry point -------------------------------------------------------------------------------
def _plan(extract: _Extract, contract: Contract) -> tuple[list[tuple[TableSpec, str, dict]], list[FileResult]]:
    """Manifest files in load order, and results for files that cannot be loaded at all."""
    by_file = contract.by_file()
    planned: dict[str, tuple[TableSpec, str, dict]] = {}
    refused = []
    for rel, entry in extract.manifest["files"].items():
        parts = PurePosixPath(rel).parts
        system = entry.get("system", "?") if isinstance(entry, dict) else "?"
        name = entry.get("table", "?") if isinstance(entry, dict) else "?"
        if PurePosixPath(rel).is_absolute() or ".." in parts or (parts and parts[0] == "truth"):
            reason = f"refused: {rel} is outside the extract's data files (truth/ is never loaded)"
        elif rel not in by_file:
            reason = f"manifest contradiction: {rel} is not a file of the contract"
        else:
            planned[rel] = (by_file[rel], rel, entry)
            continue
        refused.append(FileResult(file=rel, system=str(system), table=str(name), status="failed",
                                  message=reason, reasons=[reason]))
    order = {t.file: i for i, t in enumerate(contract.load_order())}
    return sorted(planned.values(), key=lambda item: order[item[1]]), refused


def ingest_directory(directory: Path, conn: warehouse.Connection, encoding: str | None = None,
                     console: Console | None = None, *,
                     max_reject_rate: float | None = None, work_as: str | None = None) -> IngestSummary:
    """Load the extract in ``directory``; raise :class:`IngestError` if any file failed.

    ``work_as="ingest"``: the loads work as the ingest stage's role (gridcredit_loader: writes raw
    and its ledger only; ADR 0080); the caller has applied the access rules (`gridcredit run`,
    `gridcredit ingest`). None: the login role.

    Files that load commit one by one; a failed file does not stop the others, and the error is
    raised at the end (after the summary is printed) naming every failed file and its first reasons.
    """
    began = time.monotonic()
    console = console or Console(stderr=True, quiet=True)
    directory = Path(directory)
    contract = load_contract()
    if encoding:
        normalise_encoding(encoding)
    extract = read_manifest(directory, contract)
    config = settings.ingest_settings()
    rate = config.max_reject_rate if max_reject_rate is None else max_reject_rate
    planned, results = _plan(extract, contract)

    with warehouse.connect(conn) as pg:
        # A killed client's backend notices at once and rolls back (PostgreSQL 14+, Linux).
        pg.execute("set client_connection_check_interval = '1s'")
        pg.commit()
        ensure_schema(pg, contract, work_as=work_as)
        loader = _Loader(pg, extract, contract, encoding, console, rate, config.default_encoding)
        progress = Progress(
            TextColumn("[bold]ingest[/] {task.description}"), BarColumn(),
            TextColumn("{task.fields[rows]:>12,.0f} rows"), TextColumn("{task.fields[rate]:>10,.0f} rows/s"),
            TimeElapsedColumn(), console=console, transient=True, disable=not console.is_terminal,
        )
        with progress:
            hook = _ProgressHook(progress if console.is_terminal else None)
            for number, (table, rel, entry) in enumerate(planned, start=1):
                result = loader.load(table, rel, entry, hook)
                results.append(result)
                _print_result(console, result)
                faults.fault_point("ingest", number)  # crash tests: after the n-th file is done
    summary = IngestSummary(directory, extract.kind, extract.schema_version, results,
                            seconds=time.monotonic() - began)
    console.print(_summary_table(summary))
    if summary.failed:
        lines = [f"{len(summary.failed)} of {len(summary.files)} files failed "
                 "(the other files were loaded or already loaded):"]
        for f in summary.failed:
            lines.append(f"  {f.file}: " + "; ".join(f.reasons[: MAX_REASONS_IN_MESSAGE + 1]))
        raise IngestError("\n".join(lines))
    return summary


def _print_result(console: Console, result: FileResult) -> None:
    if result.status == "failed":
        console.print(f"[bold red]failed[/] {result.file}: {result.message}", highlight=False)
    elif result.status == "already loaded":
        console.print(f"[dim]{result.file}: {result.message}[/]", highlight=False)
    else:
        extra = f" ({result.message})" if result.message else ""
        console.print(
            f"loaded {result.file}: {result.rows_loaded:,} rows, {result.rows_rejected:,} rejected, "
            f"{result.rows_per_s:,.0f} rows/s{extra}", highlight=False)
