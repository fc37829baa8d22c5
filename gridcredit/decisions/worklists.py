"""`gridcredit export worklists`: the files operations teams act on, for one decision month.

Three lists, each written as CSV (UTF-8 with a byte-order mark, so Excel shows Chinese text) and XLSX:

* ``collections_worklist_<month>``: the collections team's list, prioritised by arrears probability x
  amount at risk (the first ``collections_worklist_size`` ranks, seed credit_policy_parameters);
* ``theft_inspection_list_<month>``: the inspection list at the capacity the ML step applies;
* ``terms_changes_<month>``: customers whose credit terms change materially, with the reasons and the
  approval each change needs.

The lists are read from the marts in ``marts_decisions`` (the logic lives in dbt, tested there).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import psycopg

from gridcredit.decisions.store import latest_decision_month

WORKLISTS: dict[str, str] = {
    "collections_worklist": """
        select
            worklist.priority_rank,
            worklist.customer_id,
            worklist.region_code,
            worklist.industry_code,
            worklist.customer_type,
            worklist.payment_method,
            worklist.decision_grade,
            worklist.warning_level,
            round(worklist.arrears_probability::numeric, 4) as arrears_probability,
            worklist.outstanding_amount,
            worklist.arrears_amount,
            worklist.days_past_due,
            worklist.amount_at_risk_amount,
            worklist.priority_amount,
            worklist.suggested_action,
            worklist.warning_reasons
        from marts_decisions.fct_collections_worklist as worklist
        where worklist.month_start_date = %(month)s and worklist.is_on_worklist
        order by worklist.priority_rank
    """,
    "theft_inspection_list": """
        select
            inspection.suspicion_rank,
            inspection.customer_id,
            inspection.region_code,
            inspection.industry_code,
            inspection.customer_type,
            inspection.tariff_code,
            round(inspection.theft_suspicion_score::numeric, 4) as theft_suspicion_score,
            inspection.decision_grade,
            inspection.credit_list_status,
            inspection.outstanding_amount,
            inspection.theft_suspicion_reasons
        from marts_decisions.fct_theft_inspection_worklist as inspection
        where inspection.month_start_date = %(month)s
        order by inspection.suspicion_rank, inspection.customer_id
    """,
    "terms_changes": """
        select
            decisions.customer_id,
            decisions.region_code,
            decisions.customer_type,
            decisions.previous_decision_grade,
            decisions.decision_grade,
            decisions.policy_rule_id,
            decisions.previous_payment_cycle,
            decisions.payment_cycle,
            decisions.previous_prepayment_rate,
            decisions.prepayment_rate,
            decisions.previous_deposit_amount,
            decisions.deposit_amount,
            decisions.previous_credit_period_days,
            decisions.credit_period_days,
            decisions.previous_credit_limit_amount,
            decisions.credit_limit_amount,
            decisions.approval_level,
            decisions.override_ids,
            decisions.change_summary,
            decisions.terms_reason
        from marts_decisions.fct_credit_decisions as decisions
        where decisions.month_start_date = %(month)s and decisions.has_terms_change
        order by decisions.is_approval_required desc, decisions.credit_limit_amount desc, decisions.customer_id
    """,
}


class WorklistError(RuntimeError):
    """The worklists cannot be exported (no decisions yet, or no such month)."""


@dataclass
class WorklistFile:
    name: str
    rows: int
    csv_path: Path
    xlsx_path: Path


def parse_month(text: str) -> dt.date:
    """``YYYY-MM`` -> the month's first day (ValueError with a clear message otherwise)."""
    try:
        return dt.datetime.strptime(text, "%Y-%m").date()
    except ValueError as error:
        raise ValueError(f"month must look like 2024-12 (YYYY-MM), not {text!r}") from error


def resolve_month(pg: psycopg.Connection, month: str | None) -> dt.date:
    """The month asked for, checked against the decisions mart; the latest one when none is given."""
    latest = latest_decision_month(pg)
    if latest is None:
        raise WorklistError("no credit decisions in the warehouse yet: run the pipeline (`gridcredit run`) first")
    if month is None:
        return latest
    first_day = parse_month(month)
    found = pg.execute(
        "select 1 from marts_decisions.fct_credit_decisions where month_start_date = %s limit 1", [first_day]
    ).fetchone()
    if not found:
        first = pg.execute("select min(month_start_date) from marts_decisions.fct_credit_decisions").fetchone()[0]
        raise WorklistError(f"no credit decisions for {month}: decisions cover {first:%Y-%m} to {latest:%Y-%m}")
    return first_day


def read_worklist(pg: psycopg.Connection, name: str, month: dt.date) -> pd.DataFrame:
    with pg.cursor() as cursor:
        cursor.execute(WORKLISTS[name], {"month": month})
        columns = [column.name for column in cursor.description]
        return pd.DataFrame(cursor.fetchall(), columns=columns)


def _for_excel(frame: pd.DataFrame) -> pd.DataFrame:
    """Decimals as floats (openpyxl writes Decimal as text otherwise)."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object and out[column].map(lambda v: v.__class__.__name__ == "Decimal").any():
            out[column] = pd.to_numeric(out[column])
    return out


def export_worklists(pg: psycopg.Connection, out_dir: Path, month: str | None = None) -> list[WorklistFile]:
    """Write every worklist of ``month`` (default: the latest decision month) to ``out_dir``."""
    first_day = resolve_month(pg, month)
    out_dir.mkdir(parents=True, exist_ok=True)
    label = f"{first_day:%Y-%m}"
    files = []
    for name in WORKLISTS:
        frame = read_worklist(pg, name, first_day)
        csv_path = out_dir / f"{name}_{label}.csv"
        xlsx_path = out_dir / f"{name}_{label}.xlsx"
        frame.to_csv(csv_path, index=False, encoding="utf-8-sig")
        with pd.ExcelWriter(xlsx_path, engine="openpyxl") as writer:
            sheet = name[:31]
            _for_excel(frame).to_excel(writer, sheet_name=sheet, index=False)
            worksheet = writer.sheets[sheet]
            worksheet.freeze_panes = "A2"
            for index, column in enumerate(frame.columns, start=1):
                width = max([len(str(column))] + [len(str(v)) for v in frame[column].head(200)]) + 2
                worksheet.column_dimensions[worksheet.cell(row=1, column=index).column_letter].width = min(width, 60)
        files.append(WorklistFile(name, len(frame), csv_path, xlsx_path))
    return files
