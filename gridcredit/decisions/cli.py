"""Typer sub-apps of the decisions layer, mounted by ``gridcredit/cli.py``::

    from gridcredit.decisions.cli import export_app, override_app, policy_app, report_app

    app.add_typer(override_app, name="override")
    app.add_typer(export_app, name="export")
    app.add_typer(policy_app, name="policy")
    app.add_typer(report_app, name="report")

Commands: ``override add|list|expire|history``, ``export worklists``, ``policy simulate``,
``report customer|monthly``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from gridcredit import warehouse

console = Console(stderr=True, soft_wrap=True)

override_app = typer.Typer(
    help="Analysts' overrides of grade, limit and terms (insert-only audit trail in schema decisions).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
export_app = typer.Typer(
    help="Export the files operations teams act on.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
policy_app = typer.Typer(
    help="Try an alternative credit policy (results in schema whatif).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
report_app = typer.Typer(
    help="Credit reports (HTML and PDF).", no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False
)


# A callback on every sub-app keeps each a command group (`gridcredit export worklists`), even with
# a single command.
@override_app.callback()
def _override_group() -> None:
    """Analysts' overrides of grade, limit and terms (insert-only audit trail in schema decisions)."""


@export_app.callback()
def _export_group() -> None:
    """Export the files operations teams act on."""


@policy_app.callback()
def _policy_group() -> None:
    """Try an alternative credit policy (results in schema whatif)."""


@report_app.callback()
def _report_group() -> None:
    """Credit reports (HTML and PDF)."""


REBUILD_HINT = (
    "Decisions use it from their next build: `gridcredit dbt build --select tag:decisions` "
    "(or the next `gridcredit run`)."
)


def _fail(message: str, code: int = 1) -> typer.Exit:
    console.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


def _date(text: str | None, option: str) -> dt.date | None:
    if text is None:
        return None
    for fmt in ("%Y-%m-%d", "%Y-%m"):
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise _fail(f"{option} must be a date (YYYY-MM-DD) or a month (YYYY-MM), not {text!r}", 2)


def _month_end(day: dt.date) -> dt.date:
    return (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)


# -- override -----------------------------------------------------------------------------------------
@override_app.command("add")
def override_add(
    customer_id: Annotated[str, typer.Argument(help="Customer account (e.g. C100000001).")],
    reason: Annotated[str, typer.Option("--reason", help="Why the recommendation is overridden (required).")],
    expires: Annotated[
        str | None, typer.Option("--expires", help="Last day in force (YYYY-MM-DD; YYYY-MM = its month end).")
    ] = None,
    months: Annotated[
        int | None, typer.Option("--months", help="In force for this many months instead of --expires.")
    ] = None,
    grade: Annotated[str | None, typer.Option("--grade", help="Final grade: AAA, AA, A, B or C.")] = None,
    limit: Annotated[float | None, typer.Option("--limit", help="Credit limit (yuan).")] = None,
    period: Annotated[
        int | None, typer.Option("--period", help="Credit period (days; over 90 needs the finance head).")
    ] = None,
    cycle: Annotated[
        str | None, typer.Option("--cycle", help="Payment cycle: monthly, semi_monthly, weekly, prepaid.")
    ] = None,
    prepayment: Annotated[float | None, typer.Option("--prepayment", help="Prepayment share 0-1 (0.3 = 三成).")] = None,
    deposit_months: Annotated[
        float | None, typer.Option("--deposit-months", help="Deposit in months of the expected bill.")
    ] = None,
    start: Annotated[
        str | None, typer.Option("--from", help="First day in force (default: the latest decision month).")
    ] = None,
    by: Annotated[str | None, typer.Option("--by", help="Who overrides (default: the login name).")] = None,
) -> None:
    """Override a customer's grade, limit or terms, with a reason and an expiry."""
    from decimal import Decimal

    from gridcredit.decisions.store import OverrideError, OverrideTerms, add_override

    expires_on = _date(expires, "--expires")
    if expires is not None and len(expires) == 7:
        expires_on = _month_end(expires_on)
    terms = OverrideTerms(
        final_grade=grade.upper() if grade else None,
        credit_limit_amount=Decimal(str(limit)) if limit is not None else None,
        credit_period_days=period,
        payment_cycle=cycle,
        prepayment_rate=Decimal(str(prepayment)) if prepayment is not None else None,
        deposit_months=Decimal(str(deposit_months)) if deposit_months is not None else None,
    )
    conn = warehouse.ensure_running()
    try:
        with warehouse.connect(conn, autocommit=True) as pg:
            override_id = add_override(
                pg,
                customer_id,
                terms,
                reason,
                expires_on=expires_on,
                months=months,
                effective_from=_date(start, "--from"),
                created_by=by,
            )
    except OverrideError as error:
        raise _fail(str(error), 2) from error
    console.print(f"recorded {override_id} for {customer_id}: {terms.describe()}. {REBUILD_HINT}", highlight=False)
    typer.echo(override_id)


@override_app.command("list")
def override_list(
    customer_id: Annotated[str | None, typer.Option("--customer", help="Only this customer.")] = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="In force on this date (default: the latest decision month).")
    ] = None,
    include_all: Annotated[bool, typer.Option("--all", help="Every override, in force or not.")] = False,
) -> None:
    """List the overrides in force (or all of them)."""
    from gridcredit.decisions.store import list_overrides

    conn = warehouse.ensure_running()
    with warehouse.connect(conn, autocommit=True) as pg:
        overrides = list_overrides(pg, customer_id, _date(as_of, "--as-of"), include_inactive=include_all)
    table = Table(title="credit overrides" + ("" if include_all else " in force"))
    for column in ("override", "customer", "sets", "from", "until", "reason", "by"):
        table.add_column(column)
    for item in overrides:
        until = str(item.last_day_in_force)
        if item.revoked_from:
            until += f" (ended by {item.revoked_by}: {item.revoke_reason})"
        table.add_row(
            item.override_id,
            item.customer_id,
            item.terms.describe(),
            str(item.effective_from),
            until,
            item.reason,
            item.created_by,
        )
    Console(soft_wrap=True).print(table)


@override_app.command("expire")
def override_expire(
    override_id: Annotated[str, typer.Argument(help="Override id (OVR-000001).")],
    reason: Annotated[str, typer.Option("--reason", help="Why it ends early (required).")],
    on: Annotated[
        str | None, typer.Option("--on", help="First day no longer in force (default: the latest decision month).")
    ] = None,
    by: Annotated[str | None, typer.Option("--by", help="Who ends it (default: the login name).")] = None,
) -> None:
    """End an override early (recorded as a new event; the original stays as it was)."""
    from gridcredit.decisions.store import OverrideError, expire_override

    conn = warehouse.ensure_running()
    try:
        with warehouse.connect(conn, autocommit=True) as pg:
            ended = expire_override(pg, override_id, reason, effective_from=_date(on, "--on"), created_by=by)
    except OverrideError as error:
        raise _fail(str(error), 2) from error
    console.print(f"{override_id} ends: last day in force {ended.last_day_in_force}. {REBUILD_HINT}", highlight=False)


@override_app.command("history")
def override_history_command(
    customer_id: Annotated[str | None, typer.Option("--customer", help="Only this customer.")] = None,
    override_id: Annotated[str | None, typer.Option("--override", help="Only this override.")] = None,
) -> None:
    """Show the audit trail exactly as recorded: who, when, what, why, until when."""
    from gridcredit.decisions.store import OverrideTerms, override_history

    conn = warehouse.ensure_running()
    with warehouse.connect(conn, autocommit=True) as pg:
        events = override_history(pg, customer_id, override_id)
    table = Table(title="override audit trail")
    for column in ("event", "override", "type", "customer", "what", "from", "expires", "reason", "by", "recorded at"):
        table.add_column(column)
    for event in events:
        what = (
            OverrideTerms(
                **{
                    k: event[k]
                    for k in (
                        "final_grade",
                        "credit_limit_amount",
                        "credit_period_days",
                        "payment_cycle",
                        "prepayment_rate",
                        "deposit_months",
                    )
                }
            ).describe()
            if event["event_type"] == "add"
            else "ends the override"
        )
        table.add_row(
            str(event["override_event_id"]),
            event["override_id"],
            event["event_type"],
            event["customer_id"],
            what,
            str(event["effective_from"]),
            str(event["expires_on"] or ""),
            event["reason"],
            event["created_by"],
            event["created_at"].strftime("%Y-%m-%d %H:%M:%S %Z"),
        )
    Console(soft_wrap=True).print(table)


# -- export -------------------------------------------------------------------------------------------
@export_app.command("worklists")
def export_worklists_command(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the CSV and XLSX files to.")],
    month: Annotated[str | None, typer.Option("--month", help="Decision month YYYY-MM (default: the latest).")] = None,
) -> None:
    """Write the collections worklist, the theft inspection list and the terms changes (CSV + XLSX)."""
    from gridcredit.decisions.worklists import WorklistError, export_worklists

    conn = warehouse.ensure_running()
    try:
        with warehouse.connect(conn) as pg:
            files = export_worklists(pg, out, month)
    except (WorklistError, ValueError) as error:
        raise _fail(str(error), 2) from error
    for item in files:
        console.print(f"{item.name}: {item.rows} rows -> {item.csv_path}, {item.xlsx_path}", highlight=False)


# -- policy -------------------------------------------------------------------------------------------
@policy_app.command("simulate")
def policy_simulate(
    policy: Annotated[Path, typer.Option("--policy", help="Alternative credit_policy_terms CSV (same columns).")],
    name: Annotated[str | None, typer.Option("--name", help="Name of the simulation (default: the file name).")] = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Delete earlier simulations of the same name first (scripted reruns).")
    ] = False,
) -> None:
    """Apply an alternative credit terms table to the latest month, side by side with the current policy."""
    from gridcredit.decisions.whatif import PolicyFileError, SimulationError, simulate

    conn = warehouse.ensure_running()
    try:
        result = simulate(conn, policy, name=name, replace=replace)
    except (PolicyFileError, SimulationError) as error:
        raise _fail(str(error), 2) from error
    summary = result.summary
    table = Table(title=f"what-if {result.simulation_id} on {result.month}: {summary['simulation_name']}")
    table.add_column("figure")
    table.add_column("current policy", justify="right")
    table.add_column("alternative", justify="right")

    def money(value) -> str:
        return "" if value is None else f"{float(value):,.0f}"

    def pct(value) -> str:
        return "" if value is None else f"{float(value):.1%}"

    table.add_row("customers whose terms change", "", f"{result.terms_change_count:,} of {result.customer_count:,}")
    table.add_row(
        "prepayment coverage of expected bills",
        pct(summary["current_prepayment_coverage_rate"]),
        pct(summary["alternative_prepayment_coverage_rate"]),
    )
    table.add_row(
        "exposure at default",
        money(summary["current_exposure_at_default_amount"]),
        money(summary["alternative_exposure_at_default_amount"]),
    )
    table.add_row(
        "expected loss",
        money(summary["current_expected_loss_amount"]),
        money(summary["alternative_expected_loss_amount"]),
    )
    table.add_row(
        "credit limits",
        money(summary["current_credit_limit_amount"]),
        money(summary["alternative_credit_limit_amount"]),
    )
    table.add_row("deposits", money(summary["current_deposit_amount"]), money(summary["alternative_deposit_amount"]))
    table.add_row(
        "decisions needing approval",
        str(summary["current_approval_required_count"]),
        str(summary["alternative_approval_required_count"]),
    )
    Console(soft_wrap=True).print(table)
    console.print(
        "by segment: whatif.segment_results, per customer: whatif.customer_terms "
        f"(simulation_id = {result.simulation_id})",
        highlight=False,
    )
    typer.echo(result.simulation_id)


# -- report -------------------------------------------------------------------------------------------
@report_app.command("customer")
def report_customer(
    customer_id: Annotated[str, typer.Argument(help="Customer account (e.g. C100000001).")],
    out: Annotated[Path, typer.Option("--out", help="Folder for the HTML and PDF.")] = Path("reports"),
    month: Annotated[
        str | None, typer.Option("--month", help="As of this decision month YYYY-MM (default: latest).")
    ] = None,
    pdf: Annotated[bool, typer.Option("--pdf/--no-pdf", help="Also print a PDF with headless Chromium.")] = True,
) -> None:
    """Write a customer's credit report (identity masked): grades, payments, arrears, forecast, terms, overrides."""
    from gridcredit.decisions.reports import ReportError, customer_report

    conn = warehouse.ensure_running()
    try:
        with warehouse.connect(conn, autocommit=True) as pg:
            files = customer_report(pg, customer_id, out, month=month, pdf=pdf)
    except ReportError as error:
        raise _fail(str(error), 2) from error
    console.print(f"wrote {files.html_path}" + (f" and {files.pdf_path}" if files.pdf_path else ""), highlight=False)


@report_app.command("monthly")
def report_monthly(
    month: Annotated[str | None, typer.Option("--month", help="Decision month YYYY-MM (default: the latest).")] = None,
    out: Annotated[Path, typer.Option("--out", help="Folder for the HTML and PDF.")] = Path("reports"),
    pdf: Annotated[bool, typer.Option("--pdf/--no-pdf", help="Also print a PDF with headless Chromium.")] = True,
) -> None:
    """Write the monthly credit risk report with charts."""
    from gridcredit.decisions.reports import ReportError, monthly_report

    conn = warehouse.ensure_running()
    try:
        with warehouse.connect(conn, autocommit=True) as pg:
            files = monthly_report(pg, out, month=month, pdf=pdf)
    except ReportError as error:
        raise _fail(str(error), 2) from error
    console.print(f"wrote {files.html_path}" + (f" and {files.pdf_path}" if files.pdf_path else ""), highlight=False)
