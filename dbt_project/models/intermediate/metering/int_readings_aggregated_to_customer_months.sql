{#- Exception to the folder's views: daily readings are by far the largest input (about 30
    per customer-month); aggregating them once per month, incrementally, keeps every later
    build from re-reading history. Rebuilds the months a new load can touch (see
    int_load_ledger_months); the month filter reaches the staging view's dedupe because
    reading_date is part of its key. -#}
-- Daily meter readings summed to one row per customer per month with readings (a customer's
-- meters are summed per day first: a meter replacement day counts once).
{%- set reprocess_from = gridcredit.incremental_by_month() %}

with

months as (

    select * from {{ ref('int_load_ledger_months') }}
    where {{ gridcredit.reprocess_filter('month_start_date', reprocess_from) }}

),

readings as (

    select * from {{ ref('stg_metering__readings') }}
    where {{ gridcredit.reprocess_filter('reading_date', reprocess_from) }}

),

meters as (

    select * from {{ ref('stg_billing__meters') }}

),

customer_days as (

    select
        meters.customer_id,
        readings.reading_date,
        sum(readings.consumption_kwh) as consumption_kwh,
        max(case when readings.reading_quality = 'estimated' then 1 else 0 end) as is_estimated
    from readings
    inner join meters
        on readings.meter_id = meters.meter_id
    group by meters.customer_id, readings.reading_date

),

customer_months as (

    select
        customer_days.customer_id,
        {{ gridcredit.month_start('customer_days.reading_date') }} as month_start_date,
        sum(customer_days.consumption_kwh) as consumption_kwh,
        count(*) as reading_days,
        sum(case when customer_days.consumption_kwh = 0 then 1 else 0 end) as zero_reading_days,
        sum(customer_days.is_estimated) as estimated_reading_days
    from customer_days
    group by customer_days.customer_id, {{ gridcredit.month_start('customer_days.reading_date') }}

),

-- an equality join on the month (a range join to the months made a nested loop over every day)
final as (

    select
        customer_months.customer_id,
        months.month_start_date,
        months.source_load_id,
        customer_months.consumption_kwh,
        customer_months.reading_days,
        customer_months.zero_reading_days,
        customer_months.estimated_reading_days
    from customer_months
    inner join months
        on customer_months.month_start_date = months.month_start_date

)

select * from final
