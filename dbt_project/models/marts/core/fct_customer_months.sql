-- The customer-month: one row per customer per month of the data horizon, everything as known at
-- the month end. Incremental: rebuilds only the months a new load can touch (a new month; from
-- the first month of a corrected re-delivery on), whole months at a time, so a rerun with no new
-- load changes nothing and an incremental build gives the same rows as a full one.
{#- Indexed by customer and month too (incremental_by_month): marts join a few rows (inspections,
    decisions) to their customer-month; with only the month index PostgreSQL scanned a whole month
    per row (the theft inspection outcomes ran over 17 min at 100k, session 8). -#}
{%- set reprocess_from = gridcredit.incremental_by_month(primary_key='customer_month_id') %}

with

spine as (

    select * from {{ ref('int_customer_months_spined') }}
    where {{ gridcredit.reprocess_filter('month_start_date', reprocess_from) }}

),

receivables as (

    select * from {{ ref('int_customer_months_receivables_aged') }}
    -- the 12-month maximum of days past due needs the 11 months before the first rebuilt one
    where {{ gridcredit.reprocess_filter('month_start_date', reprocess_from, lookback_months=11) }}

),

consumption as (

    select * from {{ ref('int_customer_months_consumption_compared') }}
    where {{ gridcredit.reprocess_filter('month_start_date', reprocess_from) }}

),

events as (

    select * from {{ ref('int_customer_months_events_cumulated') }}
    where {{ gridcredit.reprocess_filter('month_start_date', reprocess_from) }}

),

industry_activity as (

    select * from {{ ref('stg_macro__industry_activity') }}

),

enterprises as (

    select * from {{ ref('int_enterprises_registered_capital') }}

),

receivables_trailing as (

    select
        receivables.*,
        max(receivables.days_past_due) over (
            partition by receivables.customer_id
            order by receivables.month_start_date
            rows between 11 preceding and current row
        ) as max_days_past_due_12m
    from receivables

),

final as (

    select
        spine.customer_month_id,
        spine.customer_id,
        spine.month_start_date,
        spine.month_end_date,
        spine.customer_version_id,
        spine.customer_kind,
        spine.is_organisation,
        spine.enterprise_id,
        spine.region_code,
        spine.industry_code,
        spine.customer_type,
        spine.voltage_level,
        spine.tariff_code,
        spine.settlement_method,
        spine.payment_method,
        spine.contract_capacity_kva,
        spine.is_account_open,
        spine.tenure_months,
        receivables_trailing.billed_amount,
        receivables_trailing.billed_kwh,
        receivables_trailing.collected_amount,
        receivables_trailing.receivable_balance_amount,
        receivables_trailing.credit_balance_amount,
        receivables_trailing.arrears_amount,
        receivables_trailing.is_in_arrears,
        receivables_trailing.days_past_due,
        receivables_trailing.max_days_past_due_12m,
        receivables_trailing.arrears_amount - receivables_trailing.arrears_over_30_days_amount
            as arrears_0_30_days_amount,
        receivables_trailing.arrears_over_30_days_amount - receivables_trailing.arrears_over_60_days_amount
            as arrears_31_60_days_amount,
        receivables_trailing.arrears_over_60_days_amount - receivables_trailing.arrears_over_90_days_amount
            as arrears_61_90_days_amount,
        receivables_trailing.arrears_over_90_days_amount,
        receivables_trailing.bills_due_count,
        receivables_trailing.bills_paid_on_time_count,
        case
            when receivables_trailing.bills_due_count > 0
                then receivables_trailing.bills_paid_on_time_count = receivables_trailing.bills_due_count
        end as is_paid_on_time,
        events.dunning_notice_count,
        events.disconnection_count,
        events.reconnection_count,
        events.prepaid_balance_amount,
        events.deposit_balance_amount,
        consumption.consumption_kwh,
        consumption.reading_days,
        consumption.missing_reading_days,
        consumption.zero_reading_days,
        consumption.estimated_reading_days,
        consumption.baseline_consumption_kwh,
        consumption.consumption_vs_baseline_ratio,
        consumption.peer_customer_count,
        consumption.peer_mean_consumption_kwh,
        consumption.consumption_vs_peers_ratio,
        events.inspection_count,
        events.confirmed_theft_count,
        events.violation_count,
        events.recovered_amount,
        events.confirmed_theft_count_to_date,
        events.meter_event_count,
        events.tamper_event_count,
        events.legal_event_count,
        events.is_dishonest_debtor,
        enterprises.registered_capital_amount,
        industry_activity.activity_index as industry_activity_index,
        spine.source_load_id
    from spine
    inner join receivables_trailing
        on
            spine.customer_id = receivables_trailing.customer_id
            and spine.month_start_date = receivables_trailing.month_start_date
    inner join consumption
        on
            spine.customer_id = consumption.customer_id
            and spine.month_start_date = consumption.month_start_date
    inner join events
        on
            spine.customer_id = events.customer_id
            and spine.month_start_date = events.month_start_date
    left join industry_activity
        on
            spine.industry_code = industry_activity.industry_code
            and spine.month_start_date = industry_activity.activity_month
    left join enterprises
        on spine.enterprise_id = enterprises.enterprise_id

)

select * from final
