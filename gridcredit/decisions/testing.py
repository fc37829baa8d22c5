"""Synthetic ML outputs for tests and development of the decisions layer.

The decisions marts read what `gridcredit score` publishes in schema ``ml``. Training the real models
takes minutes and needs enough history; the decisions tests only need *plausible* outputs with the real
column layout. :func:`write_synthetic_ml_outputs` creates the ``ml`` tables with the ML step's own DDL
(``gridcredit.ml.schema``) and fills the last ``months`` months deterministically from the customer-month
mart (scores fall with days past due; forecasts follow last month's consumption). Never used by the
pipeline.
"""

from __future__ import annotations

import psycopg

SYNTHETIC_RUN = "synthetic"

_SCORES = """
insert into ml.credit_scores (
    customer_id, as_of_month, score, points, probability_bad, model_grade, final_grade, override_reason,
    reason_1, reason_2, reason_3, reason_codes, is_in_training_window, run_id, model_version, scored_at
)
with months as (
    select customer_months.*
    from marts_core.fct_customer_months as customer_months
    where customer_months.is_account_open
        and customer_months.month_start_date > (
            select max(month_start_date) - make_interval(months => %(months)s) from marts_core.fct_customer_months
        )
),
scored as (
    select
        months.*,
        greatest(0, least(100, 95 - least(months.days_past_due, 90) * 0.6
            - (abs(hashtext(months.customer_id)) %% 30)
            - case when months.confirmed_theft_count_to_date > 0 then 20 else 0 end))::integer as score
    from months
)
select
    scored.customer_id,
    scored.month_start_date,
    scored.score,
    scored.score::double precision,
    1 / (1 + exp((scored.score - 40) / 10.0)),
    case when scored.score >= 90 then 'AAA' when scored.score >= 80 then 'AA' when scored.score >= 70 then 'A'
        when scored.score >= 60 then 'B' else 'C' end,
    case when scored.score >= 90 then 'AAA' when scored.score >= 80 then 'AA' when scored.score >= 70 then 'A'
        when scored.score >= 60 then 'B' else 'C' end,
    null,
    'days past due: ' || scored.days_past_due,
    'billed this month: ' || round(scored.billed_amount),
    null,
    'days_past_due,billed_amount',
    false, %(run)s, %(run)s, now()
from scored
"""

_WARNINGS = """
insert into ml.arrears_warnings (
    customer_id, as_of_month, probability, warning_level, risk_rank, industry_code, region_code,
    reason_1, reason_2, reason_3, reason_codes, is_in_training_window, run_id, model_version, scored_at
)
with probabilities as (
    select
        scores.customer_id,
        scores.as_of_month,
        least(0.99, 0.02 + (100 - scores.score) / 110.0) as probability,
        customer_months.industry_code,
        customer_months.region_code
    from ml.credit_scores as scores
    inner join marts_core.fct_customer_months as customer_months
        on scores.customer_id = customer_months.customer_id and scores.as_of_month = customer_months.month_start_date
    where scores.run_id = %(run)s
)
select
    customer_id, as_of_month, probability,
    case when probability >= 0.5 then 'red' when probability >= 0.4 then 'orange'
        when probability >= 0.3 then 'yellow' else 'none' end,
    rank() over (partition by as_of_month order by probability desc, customer_id),
    industry_code, region_code,
    'arrears history', null, null, 'days_past_due', false, %(run)s, %(run)s, now()
from probabilities
"""

_THEFT = """
insert into ml.theft_suspicion (
    customer_id, as_of_month, suspicion_score, supervised_probability, anomaly_score, suspicion_rank,
    is_on_inspection_list, industry_code, region_code, reason_1, reason_2, reason_3, reason_codes,
    is_in_training_window, run_id, model_version, scored_at
)
with suspicion as (
    select
        customer_months.customer_id,
        customer_months.month_start_date as as_of_month,
        customer_months.industry_code,
        customer_months.region_code,
        (abs(hashtext(customer_months.customer_id || customer_months.month_start_date::text)) %% 1000) / 1000.0
            + least(customer_months.zero_reading_days, 30) / 100.0 as raw_score
    from marts_core.fct_customer_months as customer_months
    inner join ml.credit_scores as scores
        on scores.customer_id = customer_months.customer_id and scores.as_of_month = customer_months.month_start_date
    where scores.run_id = %(run)s
),
ranked as (
    select suspicion.*, rank() over (partition by as_of_month order by raw_score desc, customer_id) as suspicion_rank
    from suspicion
)
select
    customer_id, as_of_month, least(raw_score, 1), null, raw_score, suspicion_rank,
    suspicion_rank <= %(capacity)s, industry_code, region_code,
    'zero-reading days', null, null, 'zero_reading_days', false, %(run)s, %(run)s, now()
from ranked
"""

_FORECASTS = """
insert into ml.consumption_forecasts (
    customer_id, as_of_month, target_month, horizon, kwh_forecast, global_model_kwh, seasonal_naive_kwh, method,
    is_in_training_window, run_id, model_version, scored_at
)
select
    customer_months.customer_id,
    customer_months.month_start_date,
    (customer_months.month_start_date + make_interval(months => horizons.horizon))::date,
    horizons.horizon,
    round(coalesce(customer_months.consumption_kwh, 0) * (1 + 0.02 * horizons.horizon), 2),
    round(coalesce(customer_months.consumption_kwh, 0) * (1 + 0.02 * horizons.horizon), 2),
    null,
    'model', false, %(run)s, %(run)s, now()
from marts_core.fct_customer_months as customer_months
inner join ml.credit_scores as scores
    on scores.customer_id = customer_months.customer_id and scores.as_of_month = customer_months.month_start_date
cross join generate_series(1, 3) as horizons (horizon)
where scores.run_id = %(run)s
"""


def write_synthetic_ml_outputs(pg: psycopg.Connection, months: int = 6, inspection_capacity: int = 20) -> int:
    """Replace the ``ml`` outputs by synthetic ones for the last ``months`` months; return the score rows.

    Needs the customer-month mart (``marts_core.fct_customer_months``) to be built.
    """
    from gridcredit.ml.schema import ensure_schema

    ensure_schema(pg)
    params = {"months": months, "run": SYNTHETIC_RUN, "capacity": inspection_capacity}
    for table in ("consumption_forecasts", "theft_suspicion", "arrears_warnings", "credit_scores"):
        pg.execute(f"delete from ml.{table}")
    pg.execute(_SCORES, params)
    pg.execute(_WARNINGS, params)
    pg.execute(_THEFT, params)
    pg.execute(_FORECASTS, params)
    return pg.execute("select count(*) from ml.credit_scores").fetchone()[0]
