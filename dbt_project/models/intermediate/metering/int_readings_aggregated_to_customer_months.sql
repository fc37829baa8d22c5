{#- Exception to the folder's views: daily readings are by far the largest input (about 30
    per customer-month); aggregating them once per month, incrementally, keeps every later
    build from re-reading history. Rebuilds the months a new load can touch (see
    int_load_ledger_months); the month filter reaches the staging view's dedupe because
    reading_date is part of its key. -#}
-- Daily meter readings summed to one row per customer per month with readings (a day read on
-- several meters of one customer counts once).
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

-- the same rows again for the several-meter customers: a CTE read twice is materialised (every
-- reading written to a temporary file), two CTEs are planned as two scans
multi_meter_readings as (

    select * from {{ ref('stg_metering__readings') }}
    where {{ gridcredit.reprocess_filter('reading_date', reprocess_from) }}

),

meters as (

    select * from {{ ref('stg_billing__meters') }}

),

meters_per_customer as (

    select
        customer_id,
        count(*) as meter_count
    from meters
    group by customer_id

),

-- Most customers have one meter: their meter-days are their customer-days, so readings are summed
-- per meter and month before any join (the estimate then comes from the readings' own statistics).
-- Grouping every reading by customer and day first made one group per reading (112M at 100k
-- customers) and spilled to disk for 26 minutes.
meter_months as (

    select
        readings.meter_id,
        {{ gridcredit.month_start('readings.reading_date') }} as month_start_date,
        sum(readings.consumption_kwh) as consumption_kwh,
        count(*) as reading_days,
        sum(case when readings.consumption_kwh = 0 then 1 else 0 end) as zero_reading_days,
        sum(case when readings.reading_quality = 'estimated' then 1 else 0 end) as estimated_reading_days
    from readings
    group by readings.meter_id, {{ gridcredit.month_start('readings.reading_date') }}

),

-- Customers with several meters (replacements, more than one supply point): summed per day first,
-- so that a day read on two meters counts once.
multi_meter_days as (

    select
        meters.customer_id,
        readings.reading_date,
        sum(readings.consumption_kwh) as consumption_kwh,
        max(case when readings.reading_quality = 'estimated' then 1 else 0 end) as is_estimated
    from multi_meter_readings as readings
    inner join meters
        on readings.meter_id = meters.meter_id
    inner join meters_per_customer
        on meters.customer_id = meters_per_customer.customer_id
    where meters_per_customer.meter_count > 1
    group by meters.customer_id, readings.reading_date

),

customer_months as (

    select
        meters.customer_id,
        meter_months.month_start_date,
        meter_months.consumption_kwh,
        meter_months.reading_days,
        meter_months.zero_reading_days,
        meter_months.estimated_reading_days
    from meter_months
    inner join meters
        on meter_months.meter_id = meters.meter_id
    inner join meters_per_customer
        on meters.customer_id = meters_per_customer.customer_id
    where meters_per_customer.meter_count = 1

    union all

    select
        multi_meter_days.customer_id,
        {{ gridcredit.month_start('multi_meter_days.reading_date') }} as month_start_date,
        sum(multi_meter_days.consumption_kwh) as consumption_kwh,
        count(*) as reading_days,
        sum(case when multi_meter_days.consumption_kwh = 0 then 1 else 0 end) as zero_reading_days,
        sum(multi_meter_days.is_estimated) as estimated_reading_days
    from multi_meter_days
    group by multi_meter_days.customer_id, {{ gridcredit.month_start('multi_meter_days.reading_date') }}

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
