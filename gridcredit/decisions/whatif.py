"""`gridcredit policy simulate --policy FILE`: an alternative credit policy on the latest month.

The alternative terms table (a CSV with the columns of ``dbt_project/seeds/policy/credit_policy_terms.csv``)
is validated, stored in ``whatif.policy_terms`` under a new simulation id, and applied with the *same*
rules as the pipeline: dbt compiles the macro ``recommend_credit_terms`` twice, once with the current
seed and once with the stored alternative, and the two results are stored side by side in schema
``whatif``, which pipeline runs never touch:

* ``whatif.simulations``: one row per simulation with the portfolio figures under both policies;
* ``whatif.policy_terms``: the alternative table as simulated;
* ``whatif.customer_terms``: one row per customer with current and alternative terms;
* ``whatif.segment_results``: the eight drill dimensions (and ``all``) under both policies.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

import psycopg

from gridcredit import settings, warehouse
from gridcredit.decisions.store import GRADES, PAYMENT_CYCLES, current_user_name

POLICY_COLUMNS = (
    "policy_rule_id",
    "policy_segment",
    "final_grade",
    "customer_type",
    "tariff_code",
    "industry_code",
    "payment_cycle",
    "prepayment_rate",
    "deposit_months",
    "credit_period_days",
    "credit_limit_bill_multiple",
    "rule_note",
)
SELECTORS = ("final_grade", "customer_type", "tariff_code", "industry_code")
SEGMENTS = ("standard", "new_customer", "watch_list", "blacklist")
CUSTOMER_TYPES = ("residential", "general_commercial_industrial", "large_industrial", "agricultural")
TERMS = ("payment_cycle", "prepayment_rate", "deposit_amount", "credit_period_days", "credit_limit_amount")
DIMENSIONS = (
    "region_code",
    "industry_code",
    "customer_type",
    "settlement_method",
    "tariff_code",
    "decision_grade",
    "payment_method",
    "value_tier",
)
SIMULATION_TOKEN = "__GRIDCREDIT_SIMULATION_ID__"

DDL = """
create schema if not exists whatif;
comment on schema whatif is 'What-if simulations of alternative credit policies (gridcredit policy simulate); '
    'never touched by pipeline runs.';
create table if not exists whatif.simulations (
    simulation_id bigint generated always as identity primary key,
    simulation_name text not null,
    policy_file text not null,
    policy_sha256 text not null,
    month_start_date date not null,
    created_by text not null,
    created_at timestamptz not null default now(),
    customer_count integer,
    terms_change_count integer,
    current_prepayment_coverage_rate numeric,
    alternative_prepayment_coverage_rate numeric,
    current_exposure_at_default_amount numeric(18, 2),
    alternative_exposure_at_default_amount numeric(18, 2),
    current_expected_loss_amount numeric(18, 2),
    alternative_expected_loss_amount numeric(18, 2),
    current_credit_limit_amount numeric(18, 2),
    alternative_credit_limit_amount numeric(18, 2),
    current_deposit_amount numeric(18, 2),
    alternative_deposit_amount numeric(18, 2),
    current_approval_required_count integer,
    alternative_approval_required_count integer
);
create table if not exists whatif.policy_terms (
    simulation_id bigint not null references whatif.simulations (simulation_id),
    policy_rule_id text not null,
    policy_segment text not null,
    final_grade text,
    customer_type text,
    tariff_code text,
    industry_code text,
    payment_cycle text not null,
    prepayment_rate numeric(5, 4) not null,
    deposit_months numeric(6, 2) not null,
    credit_period_days integer not null,
    credit_limit_bill_multiple numeric(6, 2) not null,
    rule_note text,
    primary key (simulation_id, policy_rule_id)
);
create table if not exists whatif.customer_terms (
    simulation_id bigint not null references whatif.simulations (simulation_id),
    customer_id text not null,
    month_start_date date not null,
    region_code text,
    industry_code text,
    customer_type text,
    settlement_method text,
    tariff_code text,
    decision_grade text,
    payment_method text,
    value_tier text,
    policy_segment text,
    expected_monthly_bill_amount numeric(18, 2),
    current_policy_rule_id text,
    alternative_policy_rule_id text,
    current_payment_cycle text,
    alternative_payment_cycle text,
    current_prepayment_rate numeric(5, 4),
    alternative_prepayment_rate numeric(5, 4),
    current_prepayment_amount numeric(18, 2),
    alternative_prepayment_amount numeric(18, 2),
    current_deposit_amount numeric(18, 2),
    alternative_deposit_amount numeric(18, 2),
    current_credit_period_days integer,
    alternative_credit_period_days integer,
    current_credit_limit_amount numeric(18, 2),
    alternative_credit_limit_amount numeric(18, 2),
    current_approval_level text,
    alternative_approval_level text,
    current_exposure_at_default_amount numeric(18, 2),
    alternative_exposure_at_default_amount numeric(18, 2),
    current_expected_loss_amount numeric(18, 2),
    alternative_expected_loss_amount numeric(18, 2),
    has_terms_change boolean not null,
    primary key (simulation_id, customer_id)
);
create table if not exists whatif.segment_results (
    simulation_id bigint not null references whatif.simulations (simulation_id),
    segment_dimension text not null,
    segment_value text not null,
    customer_count integer not null,
    terms_change_count integer not null,
    expected_monthly_bill_amount numeric(18, 2),
    current_prepayment_coverage_rate numeric,
    alternative_prepayment_coverage_rate numeric,
    current_exposure_at_default_amount numeric(18, 2),
    alternative_exposure_at_default_amount numeric(18, 2),
    current_expected_loss_amount numeric(18, 2),
    alternative_expected_loss_amount numeric(18, 2),
    current_credit_limit_amount numeric(18, 2),
    alternative_credit_limit_amount numeric(18, 2),
    primary key (simulation_id, segment_dimension, segment_value)
);
"""

# dbt Jinja compiled by `dbt compile --inline`: the same macro with the current and the alternative table.
COMPARISON_TEMPLATE = """
{%- set statuses = ref('int_credit_list_statuses_evaluated') -%}
{%- set latest = 'month_start_date = (select max(month_start_date) from ' ~ statuses ~ ')' -%}
{%- set common = dict(
    statuses=statuses,
    overrides=ref('int_credit_overrides_in_force'),
    payment_cycles=ref('credit_payment_cycles'),
    approval_levels=ref('credit_approval_levels'),
    parameters=ref('int_credit_policy_parameters_pivoted'),
    loss_assumptions=ref('expected_loss_assumptions'),
    where=latest,
) -%}
with

current_terms as (
{{ gridcredit.recommend_credit_terms(policy_terms=ref('credit_policy_terms'), **common) }}
),

alternative_terms as (
{{ gridcredit.recommend_credit_terms(
    policy_terms='(select * from whatif.policy_terms where simulation_id = __GRIDCREDIT_SIMULATION_ID__)'
        ~ ' as alternative_policy_terms',
    **common
) }}
),

statuses as (
    select * from {{ statuses }} where {{ latest }}
)

select
    __GRIDCREDIT_SIMULATION_ID__ as simulation_id,
    statuses.customer_id,
    statuses.month_start_date,
    statuses.region_code,
    statuses.industry_code,
    statuses.customer_type,
    statuses.settlement_method,
    statuses.tariff_code,
    statuses.decision_grade,
    statuses.payment_method,
    coalesce(statuses.value_tier, 'unranked') as value_tier,
    statuses.policy_segment,
    statuses.expected_monthly_bill_amount,
    {%- for column in ['policy_rule_id', 'payment_cycle', 'prepayment_rate', 'prepayment_amount', 'deposit_amount',
        'credit_period_days', 'credit_limit_amount', 'approval_level', 'exposure_at_default_amount',
        'expected_loss_amount'] %}
    current_terms.{{ column }} as current_{{ column }},
    alternative_terms.{{ column }} as alternative_{{ column }},
    {%- endfor %}
    (
        {%- for column in ['payment_cycle', 'prepayment_rate', 'deposit_amount', 'credit_period_days',
            'credit_limit_amount'] %}
        current_terms.{{ column }} is distinct from alternative_terms.{{ column }}{{ ' or' if not loop.last }}
        {%- endfor %}
    ) as has_terms_change
from statuses
inner join current_terms
    on statuses.customer_id = current_terms.customer_id
left join alternative_terms
    on statuses.customer_id = alternative_terms.customer_id
"""


class PolicyFileError(ValueError):
    """The alternative policy table is not valid (the message lists every problem found)."""


class SimulationError(RuntimeError):
    """The simulation could not run (no decisions built yet, dbt failed, a rule is missing)."""


@dataclass
class SimulationResult:
    simulation_id: int
    month: str
    customer_count: int
    terms_change_count: int
    summary: dict


def _optional(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


def read_policy_file(path: Path) -> list[dict]:
    """Read and validate an alternative credit_policy_terms table; raise PolicyFileError listing every problem."""
    if not path.is_file():
        raise PolicyFileError(f"{path}: no such file")
    text = path.read_text(encoding="utf-8-sig")
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    missing = [c for c in POLICY_COLUMNS if c not in header and c != "rule_note"]
    unexpected = [c for c in header if c not in POLICY_COLUMNS]
    if missing or unexpected:
        raise PolicyFileError(
            f"{path}: columns must be those of credit_policy_terms.csv ({', '.join(POLICY_COLUMNS)}); "
            + (f"missing: {', '.join(missing)}" if missing else "")
            + ("; " if missing and unexpected else "")
            + (f"unexpected: {', '.join(unexpected)}" if unexpected else "")
        )
    problems: list[str] = []
    rows: list[dict] = []
    seen_ids: set[str] = set()
    seen_selectors: set[tuple] = set()
    for line, raw in enumerate(reader, start=2):
        row = {column: _optional(raw.get(column)) for column in POLICY_COLUMNS}
        where = f"line {line}"
        if not row["policy_rule_id"]:
            problems.append(f"{where}: policy_rule_id is empty")
        elif row["policy_rule_id"] in seen_ids:
            problems.append(f"{where}: policy_rule_id {row['policy_rule_id']} appears twice")
        seen_ids.add(row["policy_rule_id"] or "")
        if row["policy_segment"] not in SEGMENTS:
            problems.append(f"{where}: policy_segment must be one of {', '.join(SEGMENTS)}")
        if row["final_grade"] is not None and row["final_grade"] not in GRADES:
            problems.append(f"{where}: final_grade must be empty or one of {', '.join(GRADES)}")
        if row["customer_type"] is not None and row["customer_type"] not in CUSTOMER_TYPES:
            problems.append(f"{where}: customer_type must be empty or one of {', '.join(CUSTOMER_TYPES)}")
        if row["payment_cycle"] not in PAYMENT_CYCLES:
            problems.append(f"{where}: payment_cycle must be one of {', '.join(PAYMENT_CYCLES)}")
        for column, low, high in (
            ("prepayment_rate", 0, 1),
            ("deposit_months", 0, 12),
            ("credit_period_days", 0, 365),
            ("credit_limit_bill_multiple", 0, 24),
        ):
            try:
                number = Decimal(row[column] or "")
            except InvalidOperation:
                problems.append(f"{where}: {column} must be a number")
                continue
            if not low <= number <= high:
                problems.append(f"{where}: {column} must be between {low} and {high}")
            if column == "credit_period_days" and number != number.to_integral_value():
                problems.append(f"{where}: credit_period_days must be whole days")
            row[column] = number
        key = (row["policy_segment"], *(row[s] for s in SELECTORS))
        if key in seen_selectors:
            problems.append(f"{where}: another rule has the same segment and selectors {key}")
        seen_selectors.add(key)
        rows.append(row)
    if not rows:
        problems.append("the file holds no rules")
    if problems:
        raise PolicyFileError(f"{path}: " + "; ".join(problems[:20]) + (" ..." if len(problems) > 20 else ""))
    return rows


@contextmanager
def _dbt_environment(conn: warehouse.Connection):
    saved = dict(os.environ)
    os.environ.update(conn.dbt_env())
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def compile_comparison_sql(
    conn: warehouse.Connection, project_dir: Path | None = None, target_path: Path | None = None
) -> str:
    """Compile COMPARISON_TEMPLATE with dbt (in process) and return the SQL.

    ``target_path`` defaults to ``<GRIDCREDIT_HOME>/dbt-whatif-target``, kept between simulations so that
    dbt parses the project partially after the first one.
    """
    from dbt.cli.main import dbtRunner

    project_dir = project_dir or settings.DBT_PROJECT_DIR
    target_path = target_path or settings.home() / "dbt-whatif-target"
    args = [
        "compile",
        "--inline",
        COMPARISON_TEMPLATE,
        "--project-dir",
        str(project_dir),
        "--profiles-dir",
        str(project_dir),
        "--target-path",
        str(target_path),
        "--log-path",
        str(target_path / "logs"),
        "--quiet",
        "--log-level",
        "none",
        "--log-level-file",
        "none",
    ]
    with _dbt_environment(conn):
        result = dbtRunner().invoke(args)
    if not result.success or not result.result:
        raise SimulationError(f"dbt could not compile the policy rules: {result.exception or 'see dbt output'}")
    return result.result.results[0].node.compiled_code


def ensure_schema(pg: psycopg.Connection) -> None:
    pg.execute(DDL)


def _segment_results_sql(simulation_id: int) -> str:
    parts = []
    for dimension in (*DIMENSIONS, "all"):
        value = "'all'" if dimension == "all" else f"coalesce({dimension}::text, 'unknown')"
        parts.append(
            f"""
            select
                simulation_id,
                '{dimension}' as segment_dimension,
                {value} as segment_value,
                count(*) as customer_count,
                sum(case when has_terms_change then 1 else 0 end) as terms_change_count,
                sum(expected_monthly_bill_amount) as expected_monthly_bill_amount,
                sum(current_prepayment_amount) / nullif(sum(expected_monthly_bill_amount), 0)
                    as current_prepayment_coverage_rate,
                sum(alternative_prepayment_amount) / nullif(sum(expected_monthly_bill_amount), 0)
                    as alternative_prepayment_coverage_rate,
                sum(current_exposure_at_default_amount) as current_exposure_at_default_amount,
                sum(alternative_exposure_at_default_amount) as alternative_exposure_at_default_amount,
                sum(current_expected_loss_amount) as current_expected_loss_amount,
                sum(alternative_expected_loss_amount) as alternative_expected_loss_amount,
                sum(current_credit_limit_amount) as current_credit_limit_amount,
                sum(alternative_credit_limit_amount) as alternative_credit_limit_amount
            from whatif.customer_terms
            where simulation_id = {int(simulation_id)}
            group by simulation_id, 2, 3
            """
        )
    return "insert into whatif.segment_results\n" + "\nunion all\n".join(parts)


def _delete_simulations_named(pg, simulation_name: str) -> None:
    """Delete every simulation of that name with its rows (child tables first)."""
    ids = "(select simulation_id from whatif.simulations where simulation_name = %s)"
    for table in ("segment_results", "customer_terms", "policy_terms"):
        pg.execute(f"delete from whatif.{table} where simulation_id in {ids}", [simulation_name])
    pg.execute("delete from whatif.simulations where simulation_name = %s", [simulation_name])


def simulate(
    conn: warehouse.Connection,
    policy_file: Path,
    name: str | None = None,
    created_by: str | None = None,
    project_dir: Path | None = None,
    target_path: Path | None = None,
    replace: bool = False,
) -> SimulationResult:
    """Apply an alternative policy table to the latest decision month; store the comparison in ``whatif``.

    Each call keeps a new simulation (a history of what was tried). With ``replace``, earlier simulations
    of the same name are deleted in the same transaction: a scripted rerun (``make demo``) keeps one."""
    rows = read_policy_file(policy_file)
    digest = hashlib.sha256(policy_file.read_bytes()).hexdigest()
    comparison = compile_comparison_sql(conn, project_dir, target_path)
    with warehouse.connect(conn) as pg:
        exists = pg.execute("select to_regclass('intermediate.int_credit_list_statuses_evaluated')").fetchone()[0]
        if exists is None:
            raise SimulationError("the decisions are not built yet: run the pipeline (`gridcredit run`) first")
        month = pg.execute(
            "select max(month_start_date) from intermediate.int_credit_list_statuses_evaluated"
        ).fetchone()[0]
        if month is None:
            raise SimulationError("no decision month in the warehouse: run the pipeline first")
        ensure_schema(pg)
        with pg.transaction():
            if replace:
                _delete_simulations_named(pg, name or policy_file.stem)
            simulation_id = pg.execute(
                """
                insert into whatif.simulations
                    (simulation_name, policy_file, policy_sha256, month_start_date, created_by)
                values (%s, %s, %s, %s, %s) returning simulation_id
                """,
                [name or policy_file.stem, str(policy_file), digest, month, created_by or current_user_name()],
            ).fetchone()[0]
            with pg.cursor().copy(
                f"copy whatif.policy_terms (simulation_id, {', '.join(POLICY_COLUMNS)}) from stdin"
            ) as copy:
                for row in rows:
                    copy.write_row([simulation_id, *(row[c] for c in POLICY_COLUMNS)])
            sql = comparison.replace(SIMULATION_TOKEN, str(int(simulation_id)))
            columns = [
                "simulation_id",
                "customer_id",
                "month_start_date",
                *DIMENSIONS[:5],
                "decision_grade",
                "payment_method",
                "value_tier",
                "policy_segment",
                "expected_monthly_bill_amount",
            ]
            for column in (
                "policy_rule_id",
                "payment_cycle",
                "prepayment_rate",
                "prepayment_amount",
                "deposit_amount",
                "credit_period_days",
                "credit_limit_amount",
                "approval_level",
                "exposure_at_default_amount",
                "expected_loss_amount",
            ):
                columns += [f"current_{column}", f"alternative_{column}"]
            columns.append("has_terms_change")
            # no parameters: the compiled SQL contains literal % signs
            pg.execute(f"insert into whatif.customer_terms ({', '.join(columns)})\n{sql}".encode())
            unmatched = pg.execute(
                "select count(*) from whatif.customer_terms"
                " where simulation_id = %s and alternative_policy_rule_id is null",
                [simulation_id],
            ).fetchone()[0]
            if unmatched:
                examples = pg.execute(
                    """
                    select distinct policy_segment || '/' || decision_grade || '/' || customer_type
                    from whatif.customer_terms
                    where simulation_id = %s and alternative_policy_rule_id is null
                    limit 5
                    """,
                    [simulation_id],
                ).fetchall()
                raise SimulationError(
                    f"{unmatched} customers match no rule of {policy_file.name} (segment/grade/type, e.g. "
                    f"{', '.join(e[0] for e in examples)}): every policy segment needs a rule for every customer"
                )
            pg.execute(_segment_results_sql(simulation_id).encode())
            pg.execute(
                """
                update whatif.simulations as simulations set
                    customer_count = totals.customer_count,
                    terms_change_count = totals.terms_change_count,
                    current_prepayment_coverage_rate = totals.current_prepayment_coverage_rate,
                    alternative_prepayment_coverage_rate = totals.alternative_prepayment_coverage_rate,
                    current_exposure_at_default_amount = totals.current_exposure_at_default_amount,
                    alternative_exposure_at_default_amount = totals.alternative_exposure_at_default_amount,
                    current_expected_loss_amount = totals.current_expected_loss_amount,
                    alternative_expected_loss_amount = totals.alternative_expected_loss_amount,
                    current_credit_limit_amount = totals.current_credit_limit_amount,
                    alternative_credit_limit_amount = totals.alternative_credit_limit_amount,
                    current_deposit_amount = terms.current_deposit_amount,
                    alternative_deposit_amount = terms.alternative_deposit_amount,
                    current_approval_required_count = terms.current_approval_required_count,
                    alternative_approval_required_count = terms.alternative_approval_required_count
                from whatif.segment_results as totals,
                    (
                        select
                            sum(current_deposit_amount) as current_deposit_amount,
                            sum(alternative_deposit_amount) as alternative_deposit_amount,
                            sum(case when current_approval_level <> 'auto' then 1 else 0 end)
                                as current_approval_required_count,
                            sum(case when alternative_approval_level <> 'auto' then 1 else 0 end)
                                as alternative_approval_required_count
                        from whatif.customer_terms
                        where simulation_id = %(id)s
                    ) as terms
                where simulations.simulation_id = %(id)s
                    and totals.simulation_id = %(id)s
                    and totals.segment_dimension = 'all'
                """,
                {"id": simulation_id},
            )
            summary = pg.execute(
                "select * from whatif.simulations where simulation_id = %s", [simulation_id]
            ).fetchone()
            names = [d.name for d in pg.execute("select * from whatif.simulations limit 0").description]
    record = dict(zip(names, summary, strict=True))
    return SimulationResult(
        simulation_id=simulation_id,
        month=f"{month:%Y-%m}",
        customer_count=record["customer_count"] or 0,
        terms_change_count=record["terms_change_count"] or 0,
        summary=record,
    )
