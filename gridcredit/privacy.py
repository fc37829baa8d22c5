"""Personal data: the pseudonymisation key, the personal-data scanner and the retention purge.

* Key: 32 random bytes generated once into ``<GRIDCREDIT_HOME>/secrets/pseudonym.key`` (owner-only), or
  ``GRIDCREDIT_PSEUDONYM_KEY`` (64 hex digits) where a secret store provides it. It never enters the
  database or dbt's files: dbt's connections receive it through libpq's ``PGOPTIONS`` as two session
  settings (the HMAC inner and outer padded keys), which compiled SQL only names
  (``current_setting('gridcredit.pseudonym_ikey')``). Spark never receives it: the export to Spark
  carries pseudonyms computed by PostgreSQL (docs/decisions/0093-spark-receives-pseudonyms-not-personal-data.md).
  See docs/decisions/0081-keyed-pseudonyms-restricted-schema-retention.md.
* Scanner: Chinese resident ID numbers (check digit verified) and mainland mobile numbers in every text
  column of the given schemas and in files (dbt target/ and logs/).
* Purge: personal data of customers closed longer than the retention period is removed from the raw
  landing tables and the restricted schema; what was removed is logged in ``ops.privacy_purges``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import re
import secrets
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from gridcredit import settings, warehouse
from gridcredit.ingestion.identifiers import is_valid_resident_id

KEY_ENV = "GRIDCREDIT_PSEUDONYM_KEY"
_BLOCK = 64  # SHA-256 block size (HMAC, RFC 2104)


class PrivacyError(RuntimeError):
    """A privacy command cannot proceed; the message says why."""


# -- the key -----------------------------------------------------------------------------------------
def key_file() -> Path:
    return settings.home() / "secrets" / "pseudonym.key"


def pseudonym_key() -> bytes:
    """The HMAC key (generated once, owner-only); never printed."""
    from_env = os.environ.get(KEY_ENV)
    if from_env:
        try:
            key = bytes.fromhex(from_env.strip())
        except ValueError as error:
            raise PrivacyError(f"{KEY_ENV} must be hex digits") from error
        if len(key) < 16:
            raise PrivacyError(f"{KEY_ENV} is too short: at least 16 bytes (32 hex digits)")
        return key
    path = key_file()
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(path.parent, 0o700)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process created it first
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32) + "\n")
    return bytes.fromhex(path.read_text().strip())


def _padded_keys(key: bytes) -> tuple[str, str]:
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    inner = bytes(b ^ 0x36 for b in key)
    outer = bytes(b ^ 0x5C for b in key)
    return inner.hex(), outer.hex()


def pg_options(key: bytes | None = None) -> str:
    """libpq options carrying the padded keys as session settings (for PGOPTIONS / options=)."""
    inner, outer = _padded_keys(key or pseudonym_key())
    return f"-c gridcredit.pseudonym_ikey={inner} -c gridcredit.pseudonym_okey={outer}"


def pseudonym(value: str, key: bytes | None = None) -> str:
    """The pseudonym dbt's `pseudonymise` macro computes: HMAC-SHA256(key, upper(trim(value))), hex."""
    return hmac.new(key or pseudonym_key(), value.strip().upper().encode(), hashlib.sha256).hexdigest()


# Same expression as dbt_project/macros/utils/pseudonymise.sql (HMAC from the padded session keys).
PSEUDONYM_SQL = (
    "encode(sha256(decode(current_setting('gridcredit.pseudonym_okey'), 'hex') || "
    "sha256(decode(current_setting('gridcredit.pseudonym_ikey'), 'hex') || convert_to(upper(trim({x})), 'UTF8')))"
    ", 'hex')"
)


# -- the scanner -------------------------------------------------------------------------------------
# Word-bounded so that pseudonyms (hex) and prefixed keys (B000123456789) do not match.
_EDGE_L, _EDGE_R = r"(^|[^0-9A-Za-z])", r"([^0-9A-Za-z]|$)"
RESIDENT_ID_PATTERN = r"[1-9][0-9]{5}(18|19|20)[0-9]{2}(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])[0-9]{3}[0-9Xx]"
PHONE_PATTERN = r"1[3-9][0-9]{9}"
SQL_PATTERN = f"{_EDGE_L}({RESIDENT_ID_PATTERN}|{PHONE_PATTERN}){_EDGE_R}"
_ID_RE = re.compile(rf"(?<![0-9A-Za-z])({RESIDENT_ID_PATTERN})(?![0-9A-Za-z])")
_PHONE_RE = re.compile(rf"(?<![0-9A-Za-z])({PHONE_PATTERN})(?![0-9A-Za-z])")


@dataclass(frozen=True)
class Hit:
    where: str  # schema.table.column, or a file path
    kind: str  # resident_id | phone
    masked: str  # the value with its middle masked (never the clear value)


def _mask(value: str) -> str:
    return value[:3] + "*" * (len(value) - 5) + value[-2:]


def find_personal_values(text: str) -> list[tuple[str, str]]:
    """(kind, value) of resident ID numbers (valid check digit) and mobile numbers in `text`."""
    found = [("resident_id", m.group(1)) for m in _ID_RE.finditer(text) if is_valid_resident_id(m.group(1).upper())]
    found += [("phone", m.group(1)) for m in _PHONE_RE.finditer(text)]
    return found


SCANNED_TYPES = ("text", "character varying", "character", "json", "jsonb", "bigint", "numeric")


def scan_database(pg: psycopg.Connection, schema_regex: str, limit_per_column: int = 20) -> list[Hit]:
    """Hits in every text-like column of every table/view/materialised view in matching schemas."""
    columns = pg.execute(
        """
        select c.table_schema, c.table_name, c.column_name
        from information_schema.columns as c
        join information_schema.tables as t using (table_schema, table_name)
        where c.table_schema ~ %s and c.data_type = any(%s)
        order by 1, 2, 3
        """,
        [schema_regex, list(SCANNED_TYPES)],
    ).fetchall()
    hits: list[Hit] = []
    for schema, table, column in columns:
        query = sql.SQL("select distinct {col}::text from {tbl} where {col}::text ~ %s limit %s").format(
            col=sql.Identifier(column), tbl=sql.Identifier(schema, table)
        )
        for (value,) in pg.execute(query, [SQL_PATTERN, limit_per_column]).fetchall():
            for kind, found in find_personal_values(value):
                hits.append(Hit(f"{schema}.{table}.{column}", kind, _mask(found)))
    return hits


def scan_files(paths: Iterable[Path]) -> list[Hit]:
    """Hits in every file under the given folders (or files)."""
    hits: list[Hit] = []
    for root in paths:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in files:
            text = path.read_bytes().decode("utf-8", errors="replace")
            hits.extend(Hit(str(path), kind, _mask(value)) for kind, value in find_personal_values(text))
    return hits


# -- retention ---------------------------------------------------------------------------------------
PURGE_LOG_DDL = """
create schema if not exists ops;
create table if not exists ops.privacy_purges (
    purge_id bigint generated always as identity primary key,
    purged_at timestamptz not null default now(),
    closed_before date not null,
    retention text not null,
    customer_id text not null,
    fields_removed text[] not null,
    raw_rows_updated integer not null,
    restricted_rows_deleted integer not null,
    database_user text not null default current_user
);
comment on table ops.privacy_purges is 'Retention purges: which customer''s personal data was removed, when and why '
    '(closed before closed_before). The customer_id is the pseudonymous account number.';
-- Since the purge also covers enterprises' legal representatives and rejected raw lines: one row per
-- customer (customer_id), per enterprise (enterprise_id), or for lines cleared by age (both null).
alter table ops.privacy_purges add column if not exists enterprise_id text;
alter table ops.privacy_purges add column if not exists reject_lines_cleared integer not null default 0;
alter table ops.privacy_purges alter column customer_id drop not null;
"""

PERSONAL_CUSTOMER_COLUMNS = ("customer_name", "phone", "address", "email")
PURGED_FIELDS = ("customer_name", "id_number", "phone", "address", "email")
PURGED_ENTERPRISE_FIELDS = (
    "legal_representative_name",
    "legal_representative_id_number",
    "actual_controller_id_number",
)
REJECT_LINE_FIELD = "load_rejects.raw_line"
# A value shorter than this is not searched for in rejected lines (it would match unrelated text).
_MIN_TOKEN = 6


def parse_period(text: str) -> tuple[int, int]:
    """'3y', '18m', '90d' -> (months, days)."""
    match = re.fullmatch(r"\s*(\d+)\s*([ymd])\s*", text.lower())
    if not match:
        raise PrivacyError(f"retention period {text!r}: use <number>y, <number>m or <number>d (e.g. 3y)")
    number, unit = int(match.group(1)), match.group(2)
    return (number * 12, 0) if unit == "y" else (number, 0) if unit == "m" else (0, number)


def cutoff_date(period: str, today: dt.date | None = None) -> dt.date:
    months, days = parse_period(period)
    today = today or dt.date.today()
    year, month = divmod(today.year * 12 + today.month - 1 - months, 12)
    day = min(
        today.day,
        [31, 29 if year % 4 == 0 and (year % 100 or year % 400 == 0) else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][
            month
        ],
    )
    return dt.date(year, month + 1, day) - dt.timedelta(days=days)


def default_retention() -> str:
    return str((settings.project_config().get("privacy", {}) or {}).get("retention_after_close", "3y"))


@dataclass
class PurgeResult:
    closed_before: dt.date
    customers: int  # customers whose personal data was removed by this purge
    raw_rows_updated: int
    restricted_rows_deleted: int
    enterprises: int = 0  # enterprises whose legal representative / controller data was removed
    reject_lines_cleared: int = 0  # rejected raw lines (ops.load_rejects.raw_line) cleared


def _clear_reject_lines(pg: psycopg.Connection, tokens: list[tuple[str, str]]) -> Counter[str]:
    """Clear the raw text of rejected lines that hold any token; count per subject ((subject, token) pairs)."""
    tokens = [(subject, token) for subject, token in tokens if token and len(token) >= _MIN_TOKEN]
    if not tokens or pg.execute("select to_regclass('ops.load_rejects') is null").fetchone()[0]:
        return Counter()
    subjects, values = [list(column) for column in zip(*tokens, strict=True)]
    return Counter(
        row[0]
        for row in pg.execute(
            """
            with tokens as (select unnest(%s::text[]) as subject, unnest(%s::text[]) as token),
            matched as (
                select distinct on (r.ctid) r.ctid as line, t.subject
                from ops.load_rejects as r join tokens as t on strpos(r.raw_line, t.token) > 0
                order by r.ctid, t.subject
            )
            update ops.load_rejects as r set raw_line = null from matched
            where r.ctid = matched.line
            returning matched.subject
            """,
            [subjects, values],
        ).fetchall()
    )


def purge(conn: warehouse.Connection, period: str, today: dt.date | None = None, dry_run: bool = False) -> PurgeResult:
    """Remove the personal data of customers closed before today - period; log each customer purged.

    Raw landing rows keep the customer but lose name, phone, address and e-mail; the ID number is
    replaced by ``purged:<its pseudonym>`` so that staging keeps producing the same pseudonym and the
    marts keep their keys. Restricted rows of those customers are deleted.

    Enterprises whose every customer account is such a closed customer lose their legal
    representative's name and ID number and their actual controller's ID number the same way
    (``raw_registry.enterprises``, ``restricted.enterprise_people_personal_data``). An enterprise no
    customer account names is registry data about a company, not an account: it is kept.

    Rejected raw lines (``ops.load_rejects.raw_line``, kept so a data steward can correct the source)
    are cleared when they hold a purged customer's or enterprise's identifier or clear values, and
    when their load started before the cut-off (older than the retention period). One transaction.
    """
    closed_before = cutoff_date(period, today)
    with warehouse.connect(conn, options=pg_options()) as pg:
        pg.execute(PURGE_LOG_DDL)
        exists = pg.execute("select to_regclass('raw_billing.customers') is not null").fetchone()[0]
        if not exists:
            raise PrivacyError("raw_billing.customers does not exist: nothing was ever loaded")
        # The customer's latest delivered close_date decides (same rule as staging: latest load).
        customers = [
            row[0]
            for row in pg.execute(
                """
                select customer_id from (
                    select distinct on (customer_id) customer_id, close_date
                    from raw_billing.customers order by customer_id, _load_id desc, _line_number desc
                ) as latest
                where nullif(close_date, '') is not null and cast(close_date as date) < %s
                order by 1
                """,
                [closed_before],
            ).fetchall()
        ]
        # What identifies them in rejected lines: read before the clear values are overwritten.
        reject_tokens = [
            (f"customer:{customer_id}", token)
            for customer_id, *values in pg.execute(
                "select customer_id, customer_id, id_number, phone from raw_billing.customers"
                " where customer_id = any(%s)",
                [customers],
            ).fetchall()
            for token in values
        ]
        cleared = ", ".join(f"{c} = null" for c in PERSONAL_CUSTOMER_COLUMNS)
        raw_rows = Counter(
            row[0]
            for row in pg.execute(
                f"update raw_billing.customers set {cleared}, id_number = 'purged:' || "
                + PSEUDONYM_SQL.format(x="id_number")
                + " where customer_id = any(%s) and id_number not like 'purged:%%' returning customer_id",
                [customers],
            ).fetchall()
        )
        restricted_rows: Counter[str] = Counter()
        if pg.execute("select to_regclass('restricted.customer_personal_data') is not null").fetchone()[0]:
            restricted_rows.update(
                row[0]
                for row in pg.execute(
                    "delete from restricted.customer_personal_data where customer_id = any(%s) returning customer_id",
                    [customers],
                ).fetchall()
            )
        enterprise_raw, enterprise_restricted = _purge_enterprises(pg, customers, reject_tokens)
        rejects = _clear_reject_lines(pg, reject_tokens)
        aged = 0
        if pg.execute("select to_regclass('ops.load_rejects') is not null").fetchone()[0]:
            aged = pg.execute(
                "update ops.load_rejects as r set raw_line = null from ops.load_ledger as l"
                " where l.load_id = r.load_id and r.raw_line is not null and l.started_at < %s",
                [closed_before],
            ).rowcount
        purged = sorted(set(raw_rows) | set(restricted_rows) | {s[9:] for s in rejects if s.startswith("customer:")})
        enterprises = sorted(
            set(enterprise_raw) | set(enterprise_restricted) | {s[11:] for s in rejects if s.startswith("enterprise:")}
        )
        log = [
            (c, None, list(PURGED_FIELDS), raw_rows[c], restricted_rows[c], rejects[f"customer:{c}"]) for c in purged
        ]
        log += [
            (None, e, list(PURGED_ENTERPRISE_FIELDS), enterprise_raw[e], enterprise_restricted[e], rejects[key])
            for e in enterprises
            for key in [f"enterprise:{e}"]
        ]
        if aged:
            log.append((None, None, [REJECT_LINE_FIELD], 0, 0, aged))
        with pg.cursor() as cursor:
            cursor.executemany(
                "insert into ops.privacy_purges (closed_before, retention, customer_id, enterprise_id, fields_removed,"
                " raw_rows_updated, restricted_rows_deleted, reject_lines_cleared)"
                " values (%s, %s, %s, %s, %s, %s, %s, %s)",
                [(closed_before, period, *row) for row in log],
            )
        if dry_run:
            pg.rollback()
        else:
            pg.commit()
    return PurgeResult(
        closed_before,
        len(purged),
        sum(raw_rows.values()) + sum(enterprise_raw.values()),
        sum(restricted_rows.values()) + sum(enterprise_restricted.values()),
        enterprises=len(enterprises),
        reject_lines_cleared=sum(rejects.values()) + aged,
    )


def _purge_enterprises(
    pg: psycopg.Connection, closed_customers: list[str], reject_tokens: list[tuple[str, str]]
) -> tuple[Counter[str], Counter[str]]:
    """Clear the people data of enterprises all of whose customer accounts are in ``closed_customers``.

    Appends the enterprises' identifying values to ``reject_tokens``; returns raw rows updated and
    restricted rows deleted per enterprise.
    """
    if pg.execute("select to_regclass('raw_registry.enterprises') is null").fetchone()[0]:
        return Counter(), Counter()
    # The latest delivery of each customer says which enterprise it belongs to (same rule as staging).
    enterprises = [
        row[0]
        for row in pg.execute(
            """
            select enterprise_id from (
                select distinct on (customer_id) customer_id, nullif(enterprise_id, '') as enterprise_id
                from raw_billing.customers order by customer_id, _load_id desc, _line_number desc
            ) as latest
            where enterprise_id is not null
            group by enterprise_id
            having bool_and(customer_id = any(%s))
            order by 1
            """,
            [closed_customers],
        ).fetchall()
    ]
    reject_tokens.extend(
        (f"enterprise:{enterprise_id}", token)
        for enterprise_id, *values in pg.execute(
            "select enterprise_id, enterprise_id, legal_representative_id_number, actual_controller_id_number"
            " from raw_registry.enterprises where enterprise_id = any(%s)",
            [enterprises],
        ).fetchall()
        for token in values
        if token and not token.startswith("purged:")
    )
    purged_id = (
        "case when nullif({x}, '') is null or {x} like 'purged:%%' then {x} else 'purged:' || " + PSEUDONYM_SQL + " end"
    )
    raw_rows = Counter(
        row[0]
        for row in pg.execute(
            "update raw_registry.enterprises set legal_representative_name = null,"
            " legal_representative_id_number = " + purged_id.format(x="legal_representative_id_number") + ","
            " actual_controller_id_number = " + purged_id.format(x="actual_controller_id_number")
            + " where enterprise_id = any(%s) and (legal_representative_name is not null"
            " or legal_representative_id_number not like 'purged:%%'"
            " or (nullif(actual_controller_id_number, '') is not null"
            " and actual_controller_id_number not like 'purged:%%'))"
            " returning enterprise_id",
            [enterprises],
        ).fetchall()
    )
    restricted_rows: Counter[str] = Counter()
    if pg.execute("select to_regclass('restricted.enterprise_people_personal_data') is not null").fetchone()[0]:
        restricted_rows.update(
            row[0]
            for row in pg.execute(
                "delete from restricted.enterprise_people_personal_data where enterprise_id = any(%s)"
                " returning enterprise_id",
                [enterprises],
            ).fetchall()
        )
    return raw_rows, restricted_rows
