-- Everything a credit decision needs about a customer at a month end: the customer-month (drill
-- attributes, receivables, arrears), the ML outputs of that month (score and grade, arrears warning,
-- theft suspicion, consumption forecast) and the expected monthly bill. One row per open customer per
-- month that the scoring step scored (a customer without a score that month has null grade columns).
-- Incremental by scored month (docs/decisions/0098, 0104): a run rebuilds from the first month with a
-- new load or new scores; the history a decision needs comes from int_customer_months_credit_history.
{%- set reprocess_from = gridcredit.incremental_by_scored_month(
    [
        ref('stg_ml__credit_scores'), ref('stg_ml__arrears_warnings'), ref('stg_ml__theft_suspicion'),
        ref('int_consumption_forecasts_pivoted'),
    ],
    unique_key='month_start_date',
) %}

with

customer_months as (

    select * from {{ ref('fct_customer_months') }}
    where {{ gridcredit.reprocess_filter('month_start_date', reprocess_from) }}

),

histories as (

    select * from {{ ref('int_customer_months_credit_history') }}
    where {{ gridcredit.reprocess_filter('month_start_date', reprocess_from) }}

),

indicators as (

    select * from {{ ref('fct_customer_month_indicators') }}
    where {{ gridcredit.reprocess_filter('month_start_date', reprocess_from) }}

),

tariffs as (

    select * from {{ ref('dim_tariffs') }}

),

credit_scores as (

    select * from {{ ref('stg_ml__credit_scores') }}
    where {{ gridcredit.reprocess_filter('as_of_month', reprocess_from) }}

),

arrears_warnings as (

    select * from {{ ref('stg_ml__arrears_warnings') }}
    where {{ gridcredit.reprocess_filter('as_of_month', reprocess_from) }}

),

theft_suspicion as (

    select * from {{ ref('stg_ml__theft_suspicion') }}
    where {{ gridcredit.reprocess_filter('as_of_month', reprocess_from) }}

),

forecasts as (

    select * from {{ ref('int_consumption_forecasts_pivoted') }}
    where {{ gridcredit.reprocess_filter('as_of_month', reprocess_from) }}

),

parameters as (

    select * from {{ ref('int_credit_policy_parameters_pivoted') }}

),

scored_months as (

    select distinct credit_scores.as_of_month as month_start_date
    from credit_scores

),

customer_histories as (

    select
        customer_months.*,
        histories.bills_issued_to_date,
        histories.recent_monthly_bill_amount,
        histories.billed_12m_amount,
        histories.billed_12m_kwh
    from customer_months
    inner join histories
        on
            customer_months.customer_id = histories.customer_id
            and customer_months.month_start_date = histories.month_start_date

),

decision_months as (

    select customer_histories.*
    from customer_histories
    inner join scored_months
        on customer_histories.month_start_date = scored_months.month_start_date
    where customer_histories.is_account_open

),

priced as (

    select
        decision_months.*,
        coalesce(
            {{ gridcredit.safe_divide('decision_months.billed_12m_amount', 'decision_months.billed_12m_kwh') }},
            tariffs.price_per_kwh
        ) as price_per_kwh
    from decision_months
    left join tariffs
        on decision_months.tariff_code = tariffs.tariff_code

),

final as (

    select
        priced.customer_id,
        priced.month_start_date,
        priced.month_end_date,
        priced.customer_kind,
        priced.enterprise_id,
        priced.region_code,
        priced.industry_code,
        priced.customer_type,
        priced.settlement_method,
        priced.tariff_code,
        priced.payment_method,
        indicators.value_tier,
        priced.tenure_months,
        cast(priced.bills_issued_to_date as integer) as bills_issued_to_date,
        priced.billed_amount,
        priced.receivable_balance_amount as outstanding_amount,
        priced.arrears_amount,
        priced.is_in_arrears,
        priced.days_past_due,
        coalesce(priced.prepaid_balance_amount, 0) + coalesce(priced.credit_balance_amount, 0)
            as advance_balance_amount,
        priced.deposit_balance_amount as deposit_held_amount,
        credit_scores.score,
        credit_scores.model_grade,
        credit_scores.final_grade,
        credit_scores.grade_override_reason,
        nullif(concat_ws('; ', credit_scores.reason_1, credit_scores.reason_2, credit_scores.reason_3), '')
            as score_reasons,
        coalesce(
            credit_scores.bad_12m_probability,
            1
            / (1 + exp((credit_scores.score - parameters.score_pd_midpoint) / parameters.score_pd_points_per_log_odds))
        ) as bad_12m_probability,
        arrears_warnings.arrears_probability,
        coalesce(arrears_warnings.warning_level, 'none') as warning_level,
        nullif(concat_ws('; ', arrears_warnings.reason_1, arrears_warnings.reason_2, arrears_warnings.reason_3), '')
            as warning_reasons,
        theft_suspicion.suspicion_score as theft_suspicion_score,
        theft_suspicion.suspicion_rank as theft_suspicion_rank,
        coalesce(theft_suspicion.is_on_inspection_list, false) as is_on_inspection_list,
        nullif(concat_ws('; ', theft_suspicion.reason_1, theft_suspicion.reason_2, theft_suspicion.reason_3), '')
            as theft_suspicion_reasons,
        priced.price_per_kwh,
        forecasts.forecast_kwh_month_1,
        forecasts.forecast_kwh_month_2,
        forecasts.forecast_kwh_month_3,
        cast(forecasts.forecast_kwh_month_1 * priced.price_per_kwh as numeric(18, 2)) as forecast_bill_amount_month_1,
        cast(forecasts.forecast_kwh_month_2 * priced.price_per_kwh as numeric(18, 2)) as forecast_bill_amount_month_2,
        cast(forecasts.forecast_kwh_month_3 * priced.price_per_kwh as numeric(18, 2)) as forecast_bill_amount_month_3,
        case
            when forecasts.mean_forecast_kwh is not null and priced.price_per_kwh is not null then 'forecast'
            when priced.recent_monthly_bill_amount is not null then 'recent_bills'
            else 'none'
        end as expected_bill_basis,
        cast(greatest(coalesce(
            forecasts.mean_forecast_kwh * priced.price_per_kwh,
            priced.recent_monthly_bill_amount,
            0
        ), 0) as numeric(18, 2)) as expected_monthly_bill_amount,
        priced.source_load_id,
        greatest(
            credit_scores.scored_at, arrears_warnings.scored_at, theft_suspicion.scored_at, forecasts.scored_at
        ) as scored_at
    from priced
    cross join parameters
    left join indicators
        on
            priced.customer_id = indicators.customer_id
            and priced.month_start_date = indicators.month_start_date
    left join credit_scores
        on
            priced.customer_id = credit_scores.customer_id
            and priced.month_start_date = credit_scores.as_of_month
    left join arrears_warnings
        on
            priced.customer_id = arrears_warnings.customer_id
            and priced.month_start_date = arrears_warnings.as_of_month
    left join theft_suspicion
        on
            priced.customer_id = theft_suspicion.customer_id
            and priced.month_start_date = theft_suspicion.as_of_month
    left join forecasts
        on
            priced.customer_id = forecasts.customer_id
            and priced.month_start_date = forecasts.as_of_month

)

select * from final
