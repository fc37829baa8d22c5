-- ML features: one row per customer per as-of month, only information available at that month
-- end (the customer-month's as-of facts and the indicators; nothing from the payment allocation,
-- which re-allocates history when a later reversal arrives). Labels are in
-- fct_customer_month_labels, never here. tests/test_dbt.py proves it: a later payment, bill or
-- reading changes no earlier row. The exposure and payment-trend indicators (docs/indicators.md,
-- ADR 0033) run over the customer's consecutive months up to the as-of month (6m = the month and
-- the 5 before); rebuilding a month reads the 5 months before it.
{%- set reprocess_from = gridcredit.incremental_by_month(unique_key='as_of_month', primary_key='customer_month_id') %}

with

customer_months as (

    select * from {{ ref('fct_customer_months') }}
    where {{ gridcredit.reprocess_filter('month_start_date', reprocess_from, lookback_months=5) }}

),

recent_months as (

    select
        customer_months.customer_month_id,
        avg(
            {{ gridcredit.safe_divide('customer_months.billed_amount', 'customer_months.contract_capacity_kva') }}
        ) over last_3_months as billed_to_capacity_3m,
        avg(
            {{ gridcredit.safe_divide('customer_months.billed_amount', 'customer_months.contract_capacity_kva') }}
        ) over last_6_months as billed_to_capacity_6m,
        customer_months.receivable_balance_amount
        - lag(customer_months.receivable_balance_amount, 3) over by_month as receivable_change_3m,
        sum(customer_months.collected_amount) over last_3_months as collected_3m,
        sum(customer_months.billed_amount) over last_3_months as billed_3m,
        sum(customer_months.collected_amount) over last_6_months as collected_6m,
        sum(customer_months.billed_amount) over last_6_months as billed_6m,
        sum(
            case when customer_months.collected_amount > 0 and customer_months.is_in_arrears then 1 else 0 end
        ) over last_6_months as partial_payment_months_6m,
        sum(case when customer_months.is_in_arrears then 1 else 0 end) over last_6_months as arrears_months_6m,
        max(case when not customer_months.is_in_arrears then customer_months.month_start_date end)
            over last_6_months as last_month_without_arrears
    from customer_months
    window
        by_month as (
            partition by customer_months.customer_id
            order by customer_months.month_start_date
        ),
        last_3_months as (
            partition by customer_months.customer_id
            order by customer_months.month_start_date
            rows between 2 preceding and current row
        ),
        last_6_months as (
            partition by customer_months.customer_id
            order by customer_months.month_start_date
            rows between 5 preceding and current row
        )

),

indicators as (

    select * from {{ ref('fct_customer_month_indicators') }}
    where {{ gridcredit.reprocess_filter('month_start_date', reprocess_from) }}

),

final as (

    select
        customer_months.customer_month_id,
        customer_months.customer_id,
        customer_months.month_start_date as as_of_month,
        customer_months.month_end_date as as_of_date,
        customer_months.customer_kind,
        customer_months.region_code,
        customer_months.industry_code,
        customer_months.customer_type,
        customer_months.voltage_level,
        customer_months.tariff_code,
        customer_months.settlement_method,
        customer_months.payment_method,
        customer_months.contract_capacity_kva,
        customer_months.is_account_open,
        customer_months.tenure_months,
        customer_months.billed_amount,
        customer_months.collected_amount,
        customer_months.receivable_balance_amount,
        customer_months.credit_balance_amount,
        customer_months.arrears_amount,
        customer_months.is_in_arrears,
        customer_months.days_past_due,
        customer_months.max_days_past_due_12m,
        customer_months.arrears_over_90_days_amount,
        customer_months.is_paid_on_time,
        customer_months.dunning_notice_count,
        customer_months.disconnection_count,
        customer_months.prepaid_balance_amount,
        customer_months.deposit_balance_amount,
        customer_months.consumption_kwh,
        customer_months.missing_reading_days,
        customer_months.zero_reading_days,
        customer_months.consumption_vs_baseline_ratio,
        customer_months.consumption_vs_peers_ratio,
        customer_months.confirmed_theft_count_to_date,
        customer_months.is_dishonest_debtor,
        customer_months.registered_capital_amount,
        indicators.on_time_payment_rate_12m,
        indicators.months_in_arrears_12m,
        indicators.arrears_to_billed_12m_ratio,
        indicators.collected_to_billed_12m_ratio,
        indicators.consumption_vs_baseline_3m_ratio,
        indicators.consumption_vs_peers_3m_ratio,
        indicators.zero_reading_day_rate_3m,
        indicators.consumption_volatility_12m,
        indicators.billed_amount_12m,
        indicators.value_tier,
        indicators.deposit_to_monthly_billed_ratio,
        indicators.theft_or_violation_count_24m,
        indicators.tamper_event_count_12m,
        indicators.legal_event_count_12m,
        indicators.industry_activity_index,
        indicators.industry_activity_yoy_ratio,
        -- capital / scale: exposure and billing against the contract's size (docs/indicators.md)
        cast(
            {{ gridcredit.safe_divide('customer_months.receivable_balance_amount', 'customer_months.contract_capacity_kva') }}
            as numeric(18, 6)
        ) as receivable_to_contract_capacity_ratio,
        cast(
            {{ gridcredit.safe_divide('recent_months.receivable_change_3m', 'customer_months.contract_capacity_kva') }}
            as numeric(18, 6)
        ) as receivable_change_3m_to_contract_capacity_ratio,
        cast(
            {{ gridcredit.safe_divide('customer_months.billed_amount', 'customer_months.contract_capacity_kva') }}
            as numeric(18, 6)
        ) as billed_to_contract_capacity_ratio,
        cast(recent_months.billed_to_capacity_3m as numeric(18, 6)) as billed_to_contract_capacity_3m_ratio,
        cast(recent_months.billed_to_capacity_6m as numeric(18, 6)) as billed_to_contract_capacity_6m_ratio,
        -- payment behaviour: recent payment ratios and the current arrears streak
        cast({{ gridcredit.safe_divide('recent_months.collected_3m', 'recent_months.billed_3m') }} as numeric(18, 6))
            as collected_to_billed_3m_ratio,
        cast({{ gridcredit.safe_divide('recent_months.collected_6m', 'recent_months.billed_6m') }} as numeric(18, 6))
            as collected_to_billed_6m_ratio,
        cast(recent_months.partial_payment_months_6m as integer) as partial_payment_months_6m,
        cast(
            case
                when recent_months.last_month_without_arrears is null then recent_months.arrears_months_6m
                else {{ gridcredit.months_between('recent_months.last_month_without_arrears', 'customer_months.month_start_date') }}
            end as integer
        ) as consecutive_months_in_arrears_6m,
        customer_months.source_load_id
    from customer_months
    inner join indicators
        on customer_months.customer_month_id = indicators.customer_month_id
    inner join recent_months
        on customer_months.customer_month_id = recent_months.customer_month_id
    where {{ gridcredit.reprocess_filter('customer_months.month_start_date', reprocess_from) }}

)

select * from final
