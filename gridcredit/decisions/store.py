"""The override store: analysts' overrides of grade, limit and terms, as an insert-only audit trail.

The table, its insert-only triggers and its views are defined once, in the dbt macro
``dbt_project/macros/decisions/create_credit_override_store.sql``; this module renders that macro's
``default__`` body with plain Jinja so that the CLI and dbt create exactly the same objects.

Dates follow the *decision clock*: the decision of month M is dated at M's month end, and an override
is in force for it when ``effective_from <= month end <= last_day_in_force``. By default an override
starts on the first day of the latest decision month in the warehouse, so the next rebuild of the
decisions shows it.
"""

from __future__ import annotations

import calendar
import datetime as dt
import getpass
from dataclasses import dataclass, field
from decimal import Decimal

import jinja2
import psycopg
from psycopg.rows import dict_row

from gridcredit import settings

MACRO_FILE = settings.DBT_PROJECT_DIR / "macros" / "decisions" / "create_credit_override_store.sql"
GRADES = ("AAA", "AA", "A", "B", "C")
PAYMENT_CYCLES = ("monthly", "semi_monthly", "weekly", "prepaid")
DECISIONS_TABLE = "marts_decisions.fct_credit_decisions"
OVERRIDE_FIELDS = (
    "final_grade",
    "credit_limit_amount",
    "credit_period_days",
    "payment_cycle",
    "prepayment_rate",
    "deposit_months",
)


class OverrideError(ValueError):
    """An override request that the store refuses (the message says why)."""


def store_ddl() -> str:
    """The SQL that creates the override store (rendered from the dbt macro's ``default__`` body)."""
    source = MACRO_FILE.read_text(encoding="utf-8")
    # The file also holds the spark__ variant, which uses dbt's `do` tag: parse it like dbt does.
    module = jinja2.Environment(autoescape=False, extensions=["jinja2.ext.do"]).from_string(source).module
    return str(module.default__create_credit_override_store()).strip()


def ensure_store(pg: psycopg.Connection) -> None:
    """Create the schema, table, triggers and views if missing (idempotent)."""
    pg.execute(store_ddl())


@dataclass(frozen=True)
class OverrideTerms:
    """What an override sets; ``None`` leaves the recommendation's value."""

    final_grade: str | None = None
    credit_limit_amount: Decimal | float | None = None
    credit_period_days: int | None = None
    payment_cycle: str | None = None
    prepayment_rate: Decimal | float | None = None
    deposit_months: Decimal | float | None = None

    def validate(self) -> None:
        if all(getattr(self, name) is None for name in OVERRIDE_FIELDS):
            raise OverrideError(
                "an override must set at least one of: grade, limit, credit period, payment cycle, "
                "prepayment, deposit months"
            )
        if self.final_grade is not None and self.final_grade not in GRADES:
            raise OverrideError(f"grade must be one of {', '.join(GRADES)}, not {self.final_grade!r}")
        if self.payment_cycle is not None and self.payment_cycle not in PAYMENT_CYCLES:
            raise OverrideError(f"payment cycle must be one of {', '.join(PAYMENT_CYCLES)}, not {self.payment_cycle!r}")
        if self.credit_limit_amount is not None and self.credit_limit_amount < 0:
            raise OverrideError("credit limit must be 0 or more")
        if self.credit_period_days is not None and not 0 <= self.credit_period_days <= 365:
            raise OverrideError("credit period must be 0-365 days (over 90 needs the finance head's approval)")
        if self.prepayment_rate is not None and not 0 <= self.prepayment_rate <= 1:
            raise OverrideError("prepayment share must be between 0 and 1 (e.g. 0.3 for 30%)")
        if self.deposit_months is not None and not 0 <= self.deposit_months <= 12:
            raise OverrideError("deposit must be 0-12 months of the expected bill")

    def describe(self) -> str:
        parts = []
        if self.final_grade is not None:
            parts.append(f"grade {self.final_grade}")
        if self.credit_limit_amount is not None:
            parts.append(f"limit {float(self.credit_limit_amount):,.0f}")
        if self.credit_period_days is not None:
            parts.append(f"credit period {self.credit_period_days} days")
        if self.payment_cycle is not None:
            parts.append(f"payment cycle {self.payment_cycle}")
        if self.prepayment_rate is not None:
            parts.append(f"prepayment {float(self.prepayment_rate):.0%}")
        if self.deposit_months is not None:
            parts.append(f"deposit {float(self.deposit_months):g} months")
        return ", ".join(parts)


@dataclass
class Override:
    """One override as the status view shows it."""

    override_id: str
    customer_id: str
    effective_from: dt.date
    expires_on: dt.date
    last_day_in_force: dt.date
    reason: str
    created_by: str
    created_at: dt.datetime
    terms: OverrideTerms = field(default_factory=OverrideTerms)
    revoked_from: dt.date | None = None
    revoke_reason: str | None = None
    revoked_by: str | None = None

    def in_force_on(self, day: dt.date) -> bool:
        return self.effective_from <= day <= self.last_day_in_force


def current_user_name() -> str:
    try:
        return getpass.getuser()
    except Exception:  # pragma: no cover - no login name (containers)
        return "unknown"


def _relation_exists(pg: psycopg.Connection, relation: str) -> bool:
    return pg.execute("select to_regclass(%s) is not null", [relation]).fetchone()[0]


def latest_decision_month(pg: psycopg.Connection) -> dt.date | None:
    """First day of the latest month of the decisions mart (None before its first build)."""
    if not _relation_exists(pg, DECISIONS_TABLE):
        return None
    return pg.execute(f"select max(month_start_date) from {DECISIONS_TABLE}").fetchone()[0]


def default_effective_date(pg: psycopg.Connection) -> dt.date:
    """Where the decision clock stands: the latest decision month's first day, else today."""
    return latest_decision_month(pg) or dt.date.today()


def add_months(day: dt.date, months: int) -> dt.date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def add_override(
    pg: psycopg.Connection,
    customer_id: str,
    terms: OverrideTerms,
    reason: str,
    expires_on: dt.date | None = None,
    months: int | None = None,
    effective_from: dt.date | None = None,
    created_by: str | None = None,
    require_known_customer: bool = True,
) -> str:
    """Record a new override; return its id (``OVR-000001``...).

    Give either ``expires_on`` (last day in force) or ``months`` (in force for that many months from
    ``effective_from``). Raises :class:`OverrideError` for a request the store refuses.
    """
    terms.validate()
    if not reason or not reason.strip():
        raise OverrideError("a reason is required: say why the recommendation is overridden")
    created_by = (created_by or current_user_name()).strip()
    if not created_by:
        raise OverrideError("who overrides must be known (--by)")
    ensure_store(pg)
    effective_from = effective_from or default_effective_date(pg)
    if (expires_on is None) == (months is None):
        raise OverrideError("give exactly one of an expiry date (--expires) or a duration in months (--months)")
    if months is not None:
        if months < 1:
            raise OverrideError("--months must be 1 or more")
        expires_on = add_months(effective_from, months) - dt.timedelta(days=1)
    if expires_on < effective_from:
        raise OverrideError(f"the expiry {expires_on} is before the start {effective_from}")
    if require_known_customer:
        _check_customer(pg, customer_id)
    with pg.transaction():
        number = pg.execute("select nextval('decisions.credit_override_number_seq')").fetchone()[0]
        override_id = f"OVR-{number:06d}"
        pg.execute(
            """
            insert into decisions.credit_overrides (
                override_id, event_type, customer_id, final_grade, credit_limit_amount, credit_period_days,
                payment_cycle, prepayment_rate, deposit_months, effective_from, expires_on, reason, created_by
            ) values (%s, 'add', %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
            """,
            [
                override_id,
                customer_id,
                terms.final_grade,
                terms.credit_limit_amount,
                terms.credit_period_days,
                terms.payment_cycle,
                terms.prepayment_rate,
                terms.deposit_months,
                effective_from,
                expires_on,
                reason.strip(),
                created_by,
            ],
        )
    return override_id


def _check_customer(pg: psycopg.Connection, customer_id: str) -> None:
    """Refuse an unknown customer when the customer dimension exists (before the first build: allow)."""
    for relation in ("marts_core.dim_customers", DECISIONS_TABLE):
        if _relation_exists(pg, relation):
            found = pg.execute(f"select 1 from {relation} where customer_id = %s limit 1", [customer_id]).fetchone()
            if not found:
                raise OverrideError(f"customer {customer_id} is not in {relation}")
            return


def expire_override(
    pg: psycopg.Connection,
    override_id: str,
    reason: str,
    effective_from: dt.date | None = None,
    created_by: str | None = None,
) -> Override:
    """End an override early by recording an ``expire`` event (the ``add`` event stays as it was)."""
    if not reason or not reason.strip():
        raise OverrideError("a reason is required to end an override")
    created_by = (created_by or current_user_name()).strip()
    ensure_store(pg)
    with pg.transaction():
        current = get_override(pg, override_id, lock=True)
        if current is None:
            raise OverrideError(f"no override {override_id}")
        if current.revoked_from is not None:
            raise OverrideError(f"{override_id} was already ended from {current.revoked_from} by {current.revoked_by}")
        effective_from = effective_from or default_effective_date(pg)
        if effective_from > current.last_day_in_force:
            raise OverrideError(f"{override_id} is no longer in force after {current.last_day_in_force}")
        pg.execute(
            """
            insert into decisions.credit_overrides (
                override_id, event_type, customer_id, effective_from, reason, created_by
            ) values (%s, 'expire', %s, %s, %s, %s)
            """,
            [override_id, current.customer_id, effective_from, reason.strip(), created_by],
        )
    return get_override(pg, override_id)


def _override_from_row(row: dict) -> Override:
    terms = OverrideTerms(**{name: row[name] for name in OVERRIDE_FIELDS})
    return Override(
        override_id=row["override_id"],
        customer_id=row["customer_id"],
        effective_from=row["effective_from"],
        expires_on=row["expires_on"],
        last_day_in_force=row["last_day_in_force"],
        reason=row["reason"],
        created_by=row["created_by"],
        created_at=row["created_at"],
        terms=terms,
        revoked_from=row["revoked_from"],
        revoke_reason=row["revoke_reason"],
        revoked_by=row["revoked_by"],
    )


def get_override(pg: psycopg.Connection, override_id: str, lock: bool = False) -> Override | None:
    if lock:
        # Serialise two analysts ending the same override (the unique index refuses the second anyway).
        pg.execute("select pg_advisory_xact_lock(hashtext(%s))", [override_id])
    with pg.cursor(row_factory=dict_row) as cursor:
        row = cursor.execute(
            "select * from decisions.credit_override_status where override_id = %s", [override_id]
        ).fetchone()
    return _override_from_row(row) if row else None


def list_overrides(
    pg: psycopg.Connection,
    customer_id: str | None = None,
    as_of: dt.date | None = None,
    include_inactive: bool = False,
) -> list[Override]:
    """Overrides in force on ``as_of`` (default: the decision clock), or all of them."""
    ensure_store(pg)
    day = as_of or default_effective_date(pg)
    with pg.cursor(row_factory=dict_row) as cursor:
        rows = cursor.execute(
            """
            select * from decisions.credit_override_status
            where (%(customer)s::text is null or customer_id = %(customer)s)
                and (%(all)s or (effective_from <= %(day)s and last_day_in_force >= %(day)s))
            order by customer_id, override_id
            """,
            {"customer": customer_id, "all": include_inactive, "day": day},
        ).fetchall()
    return [_override_from_row(row) for row in rows]


def override_history(
    pg: psycopg.Connection, customer_id: str | None = None, override_id: str | None = None
) -> list[dict]:
    """Every event of the audit trail, oldest first, exactly as recorded."""
    ensure_store(pg)
    with pg.cursor(row_factory=dict_row) as cursor:
        return cursor.execute(
            """
            select * from decisions.credit_overrides
            where (%(customer)s::text is null or customer_id = %(customer)s)
                and (%(override)s::text is null or override_id = %(override)s)
            order by override_event_id
            """,
            {"customer": customer_id, "override": override_id},
        ).fetchall()
