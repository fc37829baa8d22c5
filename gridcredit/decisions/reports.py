"""Credit reports: one customer (`gridcredit report customer ID`) and the month (`gridcredit report monthly`).

Each report is an HTML file (Jinja2 templates in ``templates/``, charts drawn with matplotlib and
embedded as SVG) and a PDF printed from it by headless Chromium. Identity is masked: the marts hold no
names or ID numbers (they stay in the restricted layer), and the report says so.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import jinja2
import psycopg
from psycopg.rows import dict_row

from gridcredit.decisions.store import OVERRIDE_FIELDS, OverrideTerms, ensure_store, latest_decision_month
from gridcredit.decisions.worklists import WorklistError, resolve_month

TEMPLATES = Path(__file__).parent / "templates"
GRADES = ["AAA", "AA", "A", "B", "C"]
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--no-pdf-header-footer",
]


class ReportError(RuntimeError):
    """The report cannot be written (unknown customer, no decisions, no Chromium)."""


@dataclass
class ReportFiles:
    html_path: Path
    pdf_path: Path | None


# -- formatting ---------------------------------------------------------------------------------------
def money(value) -> str:
    if value is None:
        return ""
    return f"{float(value):,.0f}"


def number(value) -> str:
    return "" if value is None else f"{float(value):,.0f}"


def pct(value) -> str:
    return "" if value is None else f"{float(value):.1%}"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
    )
    env.globals.update(money=money, number=number, pct=pct)
    return env


def _rows(pg: psycopg.Connection, sql: str, params=None) -> list[dict]:
    with pg.cursor(row_factory=dict_row) as cursor:
        return cursor.execute(sql, params or {}).fetchall()


def _one(pg: psycopg.Connection, sql: str, params=None) -> dict | None:
    rows = _rows(pg, sql, params)
    return rows[0] if rows else None


def _relation_exists(pg: psycopg.Connection, relation: str) -> bool:
    return pg.execute("select to_regclass(%s) is not null", [relation]).fetchone()[0]


# -- charts -------------------------------------------------------------------------------------------
def _svg(figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def _pyplot():
    os.environ.setdefault("MPLCONFIGDIR", str(Path(tempfile.gettempdir()) / "gridcredit-matplotlib"))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 9, "svg.fonttype": "none", "figure.dpi": 100})
    return plt


def bar_chart(labels: list[str], values: list[float], title: str, color: str = "#1f5f8b") -> str:
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(6.5, 2.6))
    axis.bar(labels, values, color=color)
    for index, value in enumerate(values):
        axis.annotate(f"{value:,.0f}", (index, value), ha="center", va="bottom", fontsize=8)
    axis.set_title(title)
    axis.spines[["top", "right"]].set_visible(False)
    svg = _svg(figure)
    plt.close(figure)
    return svg


def line_chart(series: dict[str, tuple[list[str], list[float | None]]], title: str, percent: bool = False) -> str:
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(6.5, 2.6))
    for name, (labels, values) in series.items():
        axis.plot(labels, [None if v is None else float(v) for v in values], marker="o", label=name)
    axis.set_title(title)
    if percent:
        axis.yaxis.set_major_formatter(lambda value, _: f"{value:.0%}")
    axis.tick_params(axis="x", labelrotation=45)
    axis.legend(loc="best", fontsize=8, frameon=False)
    axis.spines[["top", "right"]].set_visible(False)
    svg = _svg(figure)
    plt.close(figure)
    return svg


# -- PDF ----------------------------------------------------------------------------------------------
def chromium_path() -> str:
    """The Chromium binary: GRIDCREDIT_CHROMIUM, else Debian's /usr/bin/chromium or one on PATH."""
    candidates = [
        os.environ.get("GRIDCREDIT_CHROMIUM"),
        "/usr/bin/chromium",
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
        shutil.which("google-chrome"),
    ]
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            return candidate
    raise ReportError(
        "Chromium is needed to print the PDF and was not found: install Debian's `chromium` "
        "(`make system-packages`, or `apt-get install -y chromium`), set GRIDCREDIT_CHROMIUM, or use --no-pdf"
    )


def print_pdf(html_path: Path, pdf_path: Path, timeout: int = 120) -> Path:
    """Print an HTML file to PDF with headless Chromium."""
    binary = chromium_path()
    with tempfile.TemporaryDirectory(prefix="gridcredit-chromium-") as profile:
        command = [
            binary,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            f"--print-to-pdf={pdf_path.resolve()}",
            html_path.resolve().as_uri(),
        ]
        environment = dict(os.environ, HOME=profile)
        completed = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=environment)
    if completed.returncode != 0 or not pdf_path.exists() or pdf_path.stat().st_size == 0:
        raise ReportError(f"Chromium could not print {html_path.name}: {completed.stderr.strip()[-800:]}")
    return pdf_path


def write_report(html: str, out_dir: Path, stem: str, pdf: bool = True) -> ReportFiles:
    out_dir.mkdir(parents=True, exist_ok=True)
    html_path = out_dir / f"{stem}.html"
    html_path.write_text(html, encoding="utf-8")
    pdf_path = print_pdf(html_path, out_dir / f"{stem}.pdf") if pdf else None
    return ReportFiles(html_path, pdf_path)


def _generated_at() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


# -- customer report ----------------------------------------------------------------------------------
def _override_what(event: dict) -> str:
    if event["event_type"] == "expire":
        return "ends the override"
    return OverrideTerms(**{name: event[name] for name in OVERRIDE_FIELDS}).describe()


def customer_report_data(pg: psycopg.Connection, customer_id: str, month: str | None = None) -> dict:
    if not _relation_exists(pg, "marts_core.dim_customers"):
        raise ReportError("the warehouse has no customer dimension yet: run the pipeline first")
    customer = _one(
        pg,
        """
        select customers.*, regions.region_name, industries.industry_name_en as industry_name, tariffs.tariff_name
        from marts_core.dim_customers as customers
        left join marts_core.dim_supply_regions as regions on customers.region_code = regions.region_code
        left join marts_core.dim_industries as industries on customers.industry_code = industries.industry_code
        left join marts_core.dim_tariffs as tariffs on customers.tariff_code = tariffs.tariff_code
        where customers.customer_id = %(customer)s
        """,
        {"customer": customer_id},
    )
    if customer is None:
        raise ReportError(f"no customer {customer_id} in marts_core.dim_customers")
    customer["masked_identity"] = (
        "masked: the name, ID number, phone and address are held in the restricted layer only"
        + (f" (person born in the {customer['birth_year'] // 10 * 10}s)" if customer.get("birth_year") else "")
    )
    has_decisions = latest_decision_month(pg) is not None
    first_day = None
    if has_decisions:
        try:
            first_day = resolve_month(pg, month)
        except WorklistError as error:
            raise ReportError(str(error)) from error
    elif month is not None:
        raise ReportError("no credit decisions in the warehouse yet: run the pipeline first")
    params = {"customer": customer_id, "month": first_day}
    decision = None
    grade_history: list[dict] = []
    forecast: list[dict] = []
    groups: list[dict] = []
    if has_decisions:
        decision = _one(
            pg,
            "select * from marts_decisions.fct_credit_decisions where customer_id = %(customer)s "
            "and month_start_date = %(month)s",
            params,
        )
        grade_history = _rows(
            pg,
            """
            select to_char(month_start_date, 'YYYY-MM') as month, score, model_grade, final_grade, decision_grade,
                credit_list_status, score_reasons, grade_override_reason
            from marts_decisions.fct_credit_decisions
            where customer_id = %(customer)s and month_start_date <= %(month)s
            order by month_start_date desc
            """,
            params,
        )
        if decision:
            for horizon in (1, 2, 3):
                target = (first_day + dt.timedelta(days=31 * horizon)).replace(day=1)
                forecast.append(
                    {
                        "label": f"{target:%Y-%m}",
                        "kwh": decision[f"forecast_kwh_month_{horizon}"],
                        "amount": decision[f"forecast_bill_amount_month_{horizon}"],
                    }
                )
        groups = _rows(
            pg,
            """
            select members.customer_group_id, members.link_type, exposure.member_account_count,
                exposure.group_exposure_amount, exposure.group_limit_amount, exposure.worst_grade,
                exposure.exposure_weighted_grade, exposure.alert_message
            from marts_groups.bridge_customer_group_members as members
            inner join marts_core.dim_customers as customers
                on members.enterprise_id = customers.enterprise_id
            left join marts_decisions.fct_group_credit_exposure as exposure
                on members.customer_group_id = exposure.customer_group_id and exposure.month_start_date = %(month)s
            where customers.customer_id = %(customer)s
            order by members.customer_group_id
            """,
            params,
        )
    until = first_day or dt.date.max
    bills = _rows(
        pg,
        """
        select * from marts_core.fct_bills
        where customer_id = %(customer)s and billed_month <= %(until)s
        order by issue_date desc, bill_id desc
        limit 12
        """,
        {"customer": customer_id, "until": until},
    )
    arrears = _rows(
        pg,
        """
        select to_char(month_start_date, 'YYYY-MM') as month, billed_amount, collected_amount, arrears_amount,
            arrears_0_30_days_amount, arrears_31_60_days_amount, arrears_61_90_days_amount,
            arrears_over_90_days_amount, days_past_due, consumption_kwh
        from marts_core.fct_customer_months
        where customer_id = %(customer)s and month_start_date <= %(until)s
        order by month_start_date desc
        limit 24
        """,
        {"customer": customer_id, "until": until},
    )
    on_time = sum(1 for bill in bills if bill["payment_status"] == "paid_on_time")
    late = sum(
        1 for bill in bills if bill["payment_status"] in ("paid_late", "partially_paid", "unpaid", "written_off")
    )
    payment_summary = (
        f"Last {len(bills)} bills: {on_time} paid on time, {late} late, partly paid or unpaid."
        if bills
        else "No bills yet."
    )
    history = list(reversed(arrears))
    labels = [row["month"] for row in history]
    series = {"consumption (kWh)": (labels, [row["consumption_kwh"] for row in history])}
    if forecast and any(row["kwh"] is not None for row in forecast):
        series["forecast (kWh)"] = (
            labels[-1:] + [row["label"] for row in forecast],
            [history[-1]["consumption_kwh"] if history else None] + [row["kwh"] for row in forecast],
        )
    consumption_chart = line_chart(series, "Monthly consumption and forecast") if labels else ""
    ensure_store(pg)
    overrides = _rows(
        pg,
        "select * from decisions.credit_overrides where customer_id = %(customer)s order by override_event_id",
        params,
    )
    for event in overrides:
        event["what"] = _override_what(event)
    return {
        "title": f"Customer credit report {customer_id}",
        "subtitle": f"as of {first_day:%Y-%m}" if first_day else "no credit decision yet",
        "month_label": f"{first_day:%Y-%m}" if first_day else "none",
        "generated_at": _generated_at(),
        "customer": customer,
        "decision": decision,
        "grade_history": grade_history,
        "bills": bills,
        "payment_summary": payment_summary,
        "arrears": arrears[:12],
        "forecast": forecast,
        "consumption_chart": consumption_chart,
        "groups": groups,
        "overrides": overrides,
    }


def customer_report(
    pg: psycopg.Connection, customer_id: str, out_dir: Path, month: str | None = None, pdf: bool = True
) -> ReportFiles:
    data = customer_report_data(pg, customer_id, month)
    html = _environment().get_template("customer_report.html").render(**data)
    return write_report(html, out_dir, f"customer_{customer_id}_{data['month_label']}", pdf=pdf)


# -- monthly report -----------------------------------------------------------------------------------
def monthly_report_data(pg: psycopg.Connection, month: str | None = None) -> dict:
    try:
        first_day = resolve_month(pg, month)
    except WorklistError as error:
        raise ReportError(str(error)) from error
    params = {"month": first_day}
    decisions = "marts_decisions.fct_credit_decisions"
    summary = _one(
        pg,
        f"""
        select count(*) as customer_count, sum(arrears_amount) as arrears_amount,
            sum(expected_loss_amount) as expected_loss_amount,
            sum(case when has_terms_change then 1 else 0 end) as terms_change_count,
            sum(case when is_approval_required then 1 else 0 end) as approval_required_count
        from {decisions} where month_start_date = %(month)s
        """,
        params,
    )
    grade_mix = _rows(
        pg,
        f"""
        select decision_grade, count(*) as customer_count,
            count(*)::numeric / sum(count(*)) over () as share,
            sum(outstanding_amount) as outstanding_amount, sum(credit_limit_amount) as credit_limit_amount,
            sum(expected_loss_amount) as expected_loss_amount
        from {decisions} where month_start_date = %(month)s
        group by decision_grade
        order by array_position(array['AAA', 'AA', 'A', 'B', 'C'], decision_grade)
        """,
        params,
    )
    migration_counts = _rows(
        pg,
        f"""
        select coalesce(previous_decision_grade, 'new') as from_grade, decision_grade as to_grade, count(*) as customers
        from {decisions} where month_start_date = %(month)s
        group by 1, 2
        """,
        params,
    )
    migration = {(row["from_grade"], row["to_grade"]): row["customers"] for row in migration_counts}
    rank = {grade: index for index, grade in enumerate(GRADES)}
    migration_summary = {"up": 0, "down": 0, "same": 0, "new": 0}
    for (from_grade, to_grade), customers in migration.items():
        if from_grade == "new":
            migration_summary["new"] += customers
        elif rank[to_grade] < rank[from_grade]:
            migration_summary["up"] += customers
        elif rank[to_grade] > rank[from_grade]:
            migration_summary["down"] += customers
        else:
            migration_summary["same"] += customers
    recovery = []
    if _relation_exists(pg, "marts_collections.fct_collection_segment_months"):
        recovery = _rows(
            pg,
            """
            select to_char(month_start_date, 'YYYY-MM') as month, billed_amount, collected_amount, recovery_rate,
                cumulative_recovery_rate, arrears_amount
            from marts_collections.fct_collection_segment_months
            where segment_dimension = 'all' and month_start_date <= %(month)s
                and month_start_date > %(month)s - interval '12 months'
            order by month_start_date
            """,
            params,
        )
    summary["recovery_rate"] = recovery[-1]["recovery_rate"] if recovery else None
    top_arrears = _rows(
        pg,
        f"""
        select customer_id, region_code, customer_type, decision_grade, arrears_amount, days_past_due,
            credit_list_status
        from {decisions} where month_start_date = %(month)s and arrears_amount > 0
        order by arrears_amount desc, customer_id limit 10
        """,
        params,
    )
    warnings = _rows(
        pg,
        f"""
        select warning_level, count(*) as customer_count, sum(outstanding_amount) as outstanding_amount
        from {decisions} where month_start_date = %(month)s
        group by warning_level
        order by array_position(array['red', 'orange', 'yellow', 'none'], warning_level)
        """,
        params,
    )
    collections = _rows(
        pg,
        """
        select priority_rank, customer_id, warning_level, arrears_probability, amount_at_risk_amount, suggested_action
        from marts_decisions.fct_collections_worklist
        where month_start_date = %(month)s order by priority_rank limit 10
        """,
        params,
    )
    theft = _rows(
        pg,
        """
        select suspicion_rank, customer_id, region_code, customer_type, theft_suspicion_score, theft_suspicion_reasons
        from marts_decisions.fct_theft_inspection_worklist
        where month_start_date = %(month)s order by suspicion_rank, customer_id
        """,
        params,
    )
    group_alerts = _rows(
        pg,
        """
        select * from marts_decisions.fct_group_credit_exposure
        where month_start_date = %(month)s and alert_message is not null
        order by is_hidden_over_limit_alert desc, group_exposure_amount desc
        """,
        params,
    )
    lists = _rows(
        pg,
        """
        select list_name,
            sum(case when entry_date <= %(month_end)s and (exit_date is null or exit_date > %(month_end)s)
                then 1 else 0 end) as current_count,
            sum(case when entry_date = %(month_end)s and not is_listed_before_first_decision then 1 else 0 end)
                as entered_count,
            sum(case when exit_date = %(month_end)s then 1 else 0 end) as exited_count
        from marts_decisions.fct_credit_list_periods
        group by list_name order by list_name
        """,
        {"month_end": (first_day + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)},
    )
    grade_chart = bar_chart(
        [row["decision_grade"] for row in grade_mix],
        [float(row["customer_count"]) for row in grade_mix],
        "Customers by final grade",
    )
    recovery_chart = (
        line_chart(
            {
                "recovery rate": ([r["month"] for r in recovery], [r["recovery_rate"] for r in recovery]),
                "cumulative": ([r["month"] for r in recovery], [r["cumulative_recovery_rate"] for r in recovery]),
            },
            "Recovery rate of electricity bills, last 12 months",
            percent=True,
        )
        if recovery
        else "<p class='note'>No collections mart in the warehouse.</p>"
    )
    warning_chart = bar_chart(
        [row["warning_level"] for row in warnings],
        [float(row["customer_count"]) for row in warnings],
        "Customers by arrears warning level",
        color="#b5572f",
    )
    return {
        "title": f"Monthly credit risk report {first_day:%Y-%m}",
        "subtitle": "portfolio grades, recovery, arrears, warnings, theft inspection and group exposure",
        "generated_at": _generated_at(),
        "month": first_day,
        "summary": summary,
        "grades": GRADES,
        "grade_mix": grade_mix,
        "grade_chart": grade_chart,
        "migration": migration,
        "migration_rows": [g for g in ["new", *GRADES] if any(k[0] == g for k in migration)],
        "migration_summary": migration_summary,
        "recovery": recovery,
        "recovery_chart": recovery_chart,
        "top_arrears": top_arrears,
        "warnings": warnings,
        "warning_chart": warning_chart,
        "collections": collections,
        "theft": theft[:20],
        "theft_count": len(theft),
        "group_alerts": group_alerts,
        "lists": lists,
    }


def monthly_report(pg: psycopg.Connection, out_dir: Path, month: str | None = None, pdf: bool = True) -> ReportFiles:
    data = monthly_report_data(pg, month)
    html = _environment().get_template("monthly_report.html").render(**data)
    return write_report(html, out_dir, f"monthly_credit_risk_{data['month']:%Y-%m}", pdf=pdf)


def as_number(value) -> float | None:
    """Decimal/None -> float (for tests and callers that compare numbers)."""
    if value is None:
        return None
    return float(value) if isinstance(value, Decimal | int | float) else float(str(value))
