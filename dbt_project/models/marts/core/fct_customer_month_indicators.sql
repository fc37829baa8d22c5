-- The credit indicator system: one row per customer per month, every indicator as of the month
-- end, in five dimensions (payment behaviour, consumption behaviour, capital/scale, compliance,
-- environment). Each formula is defined once in docs/indicators.md and unit-tested. Windows run
-- over the customer's consecutive months (12m = the month and the 11 before); rebuilding a month
-- needs 23 months of history before it, which the input filter keeps.
{%- set reprocess_from = gridcredit.incremental_by_month(primary_key='customer_month_id') %}

with

customer_months as (

    select * from {{ ref('fct_customer_months') }}
    where {{ gridcredit.reprocess_filter('month_start_date', reprocess_from, lookback_months=23) }}

),

industry_activity as (

    select * from {{ ref('stg_macro__industry_activity') }}

),

value_tiers as (

    select * from {{ ref('config_value_tiers') }}

),

industry_activity_compared as (

    select
        current_month.industry_code,
        current_month.activity_month,
        {{ gridcredit.safe_divide('current_month.activity_index', 'year_before.activity_index') }}
            as industry_activity_yoy_ratio
    from industry_activity as current_month
    left join industry_activity as year_before
        on
            current_month.industry_code = year_before.industry_code
            and year_before.activity_month = {{ gridcredit.add_months('current_month.activity_month', -12) }}

),

windowed as (

    select
        customer_months.customer_id,
        customer_months.month_start_date,
        customer_months.industry_code,
        customer_months.arrears_amount,
        customer_months.deposit_balance_amount,
        customer_months.industry_activity_index,
        customer_months.source_load_id,
        sum(customer_months.bills_paid_on_time_count) over last_12_months as bills_paid_on_time_12m,
        sum(customer_months.bills_due_count) over last_12_months as bills_due_12m,
        sum(case when customer_months.is_in_arrears then 1 else 0 end) over last_12_months
            as months_in_arrears_12m,
        sum(customer_months.billed_amount) over last_12_months as billed_amount_12m,
        sum(customer_months.collected_amount) over last_12_months as collected_amount_12m,
        count(*) over last_12_months as months_in_window_12m,
        sum(
            case when customer_months.baseline_consumption_kwh is not null then customer_months.consumption_kwh end
        ) over last_3_months as consumption_with_baseline_3m_kwh,
        sum(customer_months.baseline_consumption_kwh) over last_3_months as baseline_3m_kwh,
        sum(
            case when customer_months.peer_mean_consumption_kwh is not null then customer_months.consumption_kwh end
        ) over last_3_months as consumption_with_peers_3m_kwh,
        sum(customer_months.peer_mean_consumption_kwh) over last_3_months as peer_mean_3m_kwh,
        sum(customer_months.zero_reading_days) over last_3_months as zero_reading_days_3m,
        sum(customer_months.reading_days) over last_3_months as reading_days_3m,
        stddev_pop(customer_months.consumption_kwh) over last_12_months as consumption_stddev_12m_kwh,
        avg(customer_months.consumption_kwh) over last_12_months as consumption_mean_12m_kwh,
        sum(customer_months.confirmed_theft_count + customer_months.violation_count) over last_24_months
            as theft_or_violation_count_24m,
        sum(customer_months.tamper_event_count) over last_12_months as tamper_event_count_12m,
        sum(customer_months.legal_event_count) over last_12_months as legal_event_count_12m
    from customer_months
    window
        last_3_months as (
            partition by customer_months.customer_id
            order by customer_months.month_start_date
            rows between 2 preceding and current row
        ),
        last_12_months as (
            partition by customer_months.customer_id
            order by customer_months.month_start_date
            rows between 11 preceding and current row
        ),
        last_24_months as (
            partition by customer_months.customer_id
            order by customer_months.month_start_date
            rows between 23 preceding and current row
        )

),

ranked as (

    select
        windowed.*,
        cast(
            rank() over (partition by windowed.month_start_date order by windowed.billed_amount_12m desc) - 1
            as numeric(18, 6)
        )
        / count(*) over (partition by windowed.month_start_date) as value_rank_share
    from windowed

),

final as (

    select
        {{ gridcredit.surrogate_key(['ranked.customer_id', 'ranked.month_start_date']) }} as customer_month_id,
        ranked.customer_id,
        ranked.month_start_date,
        -- payment behaviour
        cast({{ gridcredit.safe_divide('ranked.bills_paid_on_time_12m', 'ranked.bills_due_12m') }} as numeric(9, 6))
            as on_time_payment_rate_12m,
        cast(ranked.months_in_arrears_12m as integer) as months_in_arrears_12m,
        cast({{ gridcredit.safe_divide('ranked.arrears_amount', 'ranked.billed_amount_12m') }} as numeric(18, 6))
            as arrears_to_billed_12m_ratio,
        cast({{ gridcredit.safe_divide('ranked.collected_amount_12m', 'ranked.billed_amount_12m') }} as numeric(18, 6))
            as collected_to_billed_12m_ratio,
        -- consumption behaviour
        cast({{ gridcredit.safe_divide('ranked.consumption_with_baseline_3m_kwh', 'ranked.baseline_3m_kwh') }} as numeric(18, 6))
            as consumption_vs_baseline_3m_ratio,
        cast({{ gridcredit.safe_divide('ranked.consumption_with_peers_3m_kwh', 'ranked.peer_mean_3m_kwh') }} as numeric(18, 6))
            as consumption_vs_peers_3m_ratio,
        cast({{ gridcredit.safe_divide('ranked.zero_reading_days_3m', 'ranked.reading_days_3m') }} as numeric(9, 6))
            as zero_reading_day_rate_3m,
        cast({{ gridcredit.safe_divide('ranked.consumption_stddev_12m_kwh', 'ranked.consumption_mean_12m_kwh') }} as numeric(18, 6))
            as consumption_volatility_12m,
        -- capital / scale
        cast(ranked.billed_amount_12m as numeric(18, 2)) as billed_amount_12m,
        value_tiers.value_tier,
        cast(
            {{ gridcredit.safe_divide('ranked.deposit_balance_amount', 'ranked.billed_amount_12m / ranked.months_in_window_12m') }}
            as numeric(18, 6)
        ) as deposit_to_monthly_billed_ratio,
        -- compliance
        cast(ranked.theft_or_violation_count_24m as integer) as theft_or_violation_count_24m,
        cast(ranked.tamper_event_count_12m as integer) as tamper_event_count_12m,
        cast(ranked.legal_event_count_12m as integer) as legal_event_count_12m,
        -- environment
        ranked.industry_activity_index,
        cast(industry_activity_compared.industry_activity_yoy_ratio as numeric(18, 6)) as industry_activity_yoy_ratio,
        ranked.source_load_id
    from ranked
    left join value_tiers
        on
            ranked.value_rank_share >= value_tiers.share_from_rate
            and ranked.value_rank_share < value_tiers.share_to_rate
    left join industry_activity_compared
        on
            ranked.industry_code = industry_activity_compared.industry_code
            and ranked.month_start_date = industry_activity_compared.activity_month
    where {{ gridcredit.reprocess_filter('ranked.month_start_date', reprocess_from) }}

)

select * from final
