"""Validation rules of the source contract in Python, plus masking.

:func:`validate_value` is the one definition of every rule: the loader's line-by-line path calls it
per value, and the fast path (``arrow_validation``) tests whole columns with vectorised checks that
accept exactly the values it accepts, then asks it for the reason of each value they refuse.
``tests/test_ingest_validation.py`` runs tricky values, every contract column and random strings
through both and asserts they agree. Reasons never contain the value itself (values may be personal
data): messages add it through :func:`mask_value`.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation

from . import identifiers
from .contract import ColumnSpec

# -- reasons -----------------------------------------------------------------------------------
REQUIRED = "required value is empty"
TYPE_REASONS = {
    "integer": "not an integer",
    "numeric": "not a number",
    "date": "not a valid date (YYYY-MM-DD)",
    "timestamp": "not a valid timestamp (YYYY-MM-DD HH:MM:SS)",
    "month": "not a valid month (YYYY-MM)",
}
CHECK_REASONS = {
    "resident_id": "invalid resident ID number (format, birth date or check digit)",
    "uscc": "invalid unified social credit code (format or check digit)",
    "resident_id_or_uscc": "neither a valid resident ID number nor a valid unified social credit code",
    "phone_cn": "invalid mainland mobile phone number",
}
DUPLICATE = "duplicate key, first at line {first}"

# The rules' regular expressions (POSIX-compatible, anchored).
INTEGER_RE = r"^-?[0-9]+$"
NUMERIC_RE = r"^-?[0-9]+(\.[0-9]+)?$"
MONTH_RE = r"^[0-9]{4}-(0[1-9]|1[0-2])$"
DATE_RE = r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"
TIMESTAMP_RE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2} ([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]$"
USCC_CHARSET = identifiers.USCC_CHARSET


def _python_re(pattern: str) -> re.Pattern[str]:
    """Compile a POSIX-style pattern so ``$`` means the end of the value.

    In Python ``$`` also matches before a trailing newline; in POSIX, RE2 and PostgreSQL it does not.
    """
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + r"\Z"
    return re.compile(pattern)


_INTEGER = _python_re(INTEGER_RE)
_NUMERIC = _python_re(NUMERIC_RE)
_MONTH = _python_re(MONTH_RE)
_DATE = _python_re(DATE_RE)
_TIMESTAMP = _python_re(TIMESTAMP_RE)
_PATTERNS: dict[str, re.Pattern[str]] = {}


def is_valid_date(value: str) -> bool:
    if not _DATE.search(value):
        return False
    try:
        dt.date(int(value[0:4]), int(value[5:7]), int(value[8:10]))
    except ValueError:
        return False
    return True


def is_valid_timestamp(value: str) -> bool:
    return bool(_TIMESTAMP.search(value)) and is_valid_date(value[:10])


def _check(kind: str, value: str) -> bool:
    if "\n" in value or "\r" in value:
        return False  # identifiers' regexes use `$`, which tolerates a trailing newline
    if kind == "resident_id":
        return identifiers.is_valid_resident_id(value)
    if kind == "uscc":
        return identifiers.is_valid_uscc(value)
    if kind == "resident_id_or_uscc":
        return identifiers.is_valid_resident_id_or_uscc(value)
    if kind == "phone_cn":
        return identifiers.is_valid_phone_cn(value)
    raise ValueError(f"unknown check {kind}")


def _fmt_bound(bound: Decimal | str) -> str:
    return str(bound)


def validate_value(column: ColumnSpec, value: str | None) -> str | None:
    """The reason ``value`` breaks the column's rules, or ``None`` if it is valid.

    Empty (``None`` or ``''``) is valid unless the column is required. Rules are checked in this
    order and the first failure is reported: required, type, allowed, pattern, min, max, check.
    """
    if value is None or value == "":
        return REQUIRED if column.required else None
    kind = column.type
    if kind == "integer" and not _INTEGER.search(value):
        return TYPE_REASONS[kind]
    if kind == "numeric" and not _NUMERIC.search(value):
        return TYPE_REASONS[kind]
    if kind == "date" and not is_valid_date(value):
        return TYPE_REASONS[kind]
    if kind == "timestamp" and not is_valid_timestamp(value):
        return TYPE_REASONS[kind]
    if kind == "month" and not _MONTH.search(value):
        return TYPE_REASONS[kind]
    if column.allowed is not None and value not in column.allowed:
        return f"not an allowed value ({', '.join(column.allowed)})"
    if column.pattern is not None:
        compiled = _PATTERNS.get(column.pattern)
        if compiled is None:
            compiled = _PATTERNS[column.pattern] = _python_re(column.pattern)
        if not compiled.search(value):
            return f"does not match pattern {column.pattern}"
    if column.min is not None or column.max is not None:
        if kind in ("integer", "numeric"):
            number = Decimal(value)
            if column.min is not None and number < column.min:
                return f"below minimum {_fmt_bound(column.min)}"
            if column.max is not None and number > column.max:
                return f"above maximum {_fmt_bound(column.max)}"
        elif kind == "date":
            if column.min is not None and value < column.min:
                return f"before minimum {column.min}"
            if column.max is not None and value > column.max:
                return f"after maximum {column.max}"
    if column.check is not None and not _check(column.check, value):
        return CHECK_REASONS[column.check]
    return None


def parse_decimal(value: str | None) -> Decimal | None:
    """A totals value as Decimal, or None if it is empty or not a number."""
    if value is None or not _NUMERIC.search(value):
        return None
    try:
        return Decimal(value)
    except InvalidOperation:  # pragma: no cover - the regex excludes it
        return None


# -- SQL ---------------------------------------------------------------------------------------
def sql_literal(value: str) -> str:
    """A SQL string literal (standard_conforming_strings is on in every supported server)."""
    return "'" + str(value).replace("'", "''") + "'"


def sql_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# The pattern form ``^PREFIX[0-9]{n}$`` (most of the contract's patterns): the vectorised checks
# (``arrow_validation``) test it on the bytes of fixed-width values instead of with a regex.
SIMPLE_PATTERN = re.compile(r"^\^([A-Za-z0-9]*)\[0-9\]\{([0-9]+)\}\$$")


def has_rules(column: ColumnSpec) -> bool:
    return bool(
        column.required or column.type != "text" or column.allowed is not None
        or column.pattern or column.min is not None or column.max is not None or column.check
    )


# -- masking -----------------------------------------------------------------------------------
def mask_value(column: ColumnSpec | None, value: str | None) -> str | None:
    """``value`` fit for messages and logs: personal values are masked, others returned as is.

    ID numbers keep the first 6 and last 4 characters (``110105********002X``), phones the first
    3 and last 4 (``138****5678``), e-mails the first character and the domain, names and other
    personal text the first character only (``张*``).
    """
    if value is None or value == "" or column is None or not column.personal:
        return value
    n = len(value)
    if column.check in ("resident_id", "uscc", "resident_id_or_uscc"):
        if n >= 12:
            return value[:6] + "*" * (n - 10) + value[-4:]
        return value[:1] + "*" * (n - 1)
    if column.check == "phone_cn" or "phone" in column.name:
        if n >= 8:
            return value[:3] + "*" * (n - 7) + value[-4:]
        return "*" * n
    if "email" in column.name and "@" in value:
        local, _, domain = value.partition("@")
        return local[:1] + "***@" + domain
    return value[:1] + "*" * (n - 1)
