-- Consumption per customer per month compared with the customer's own baseline (mean of the up to
-- 12 previous months with rows; used once minimum_baseline_months are there) and with its peers
-- (same industry section and tariff in the same month, the customer itself excluded; used once
-- minimum_peer_customers are there). Missing reading days: days the account was open without a
-- reading. One row per customer per month of the spine.
-- Incremental by month (docs/decisions/0011, 0017): the months to rebuild plus the 12 before them
-- (the baseline window) are read; peers are within a month.
{%- set reprocess_from = gridcredit.incremental_by_month() %}
with

spine as (

    select * from {{ ref('int_customer_months_spined') }}
    where {{ gridcredit.reprocess_filter('month_start_date', reprocess_from, lookback_months=12) }}

),

readings as (

    select * from {{ ref('int_readings_aggregated_to_customer_months') }}
    where {{ gridcredit.reprocess_filter('month_start_date', reprocess_from, lookback_months=12) }}

),

policy as (

    select * from {{ ref('config_arrears_policy') }}

),

monthly as (

    select
        spine.customer_id,
        spine.month_start_date,
        spine.industry_code,
        spine.tariff_code,
        spine.source_load_id,
        coalesce(readings.consumption_kwh, 0) as consumption_kwh,
        coalesce(readings.reading_days, 0) as reading_days,
        coalesce(readings.zero_reading_days, 0) as zero_reading_days,
        coalesce(readings.estimated_reading_days, 0) as estimated_reading_days,
        greatest(spine.open_days - coalesce(readings.reading_days, 0), 0) as missing_reading_days
    from spine
    left join readings
        on
            spine.customer_id = readings.customer_id
            and spine.month_start_date = readings.month_start_date

),

compared as (

    select
        monthly.*,
        avg(monthly.consumption_kwh) over (
            partition by monthly.customer_id
            order by monthly.month_start_date
            rows between 12 preceding and 1 preceding
        ) as baseline_mean_kwh,
        count(*) over (
            partition by monthly.customer_id
            order by monthly.month_start_date
            rows between 12 preceding and 1 preceding
        ) as baseline_months,
        sum(monthly.consumption_kwh) over (
            partition by monthly.month_start_date, monthly.industry_code, monthly.tariff_code
        ) - monthly.consumption_kwh as peer_total_kwh,
        count(*) over (
            partition by monthly.month_start_date, monthly.industry_code, monthly.tariff_code
        ) - 1 as peer_customer_count
    from monthly

),

final as (

    select
        compared.customer_id,
        compared.month_start_date,
        compared.consumption_kwh,
        compared.reading_days,
        compared.zero_reading_days,
        compared.estimated_reading_days,
        compared.missing_reading_days,
        case
            when compared.baseline_months >= policy.minimum_baseline_months
                then cast(compared.baseline_mean_kwh as numeric(18, 3))
        end as baseline_consumption_kwh,
        case
            when compared.baseline_months >= policy.minimum_baseline_months
                then cast({{ gridcredit.safe_divide('compared.consumption_kwh', 'compared.baseline_mean_kwh') }} as numeric(18, 4))
        end as consumption_vs_baseline_ratio,
        compared.peer_customer_count,
        case
            when compared.peer_customer_count >= policy.minimum_peer_customers
                then cast(compared.peer_total_kwh / compared.peer_customer_count as numeric(18, 3))
        end as peer_mean_consumption_kwh,
        case
            when compared.peer_customer_count >= policy.minimum_peer_customers
                then cast(
                        {{ gridcredit.safe_divide('compared.consumption_kwh', 'compared.peer_total_kwh / compared.peer_customer_count') }}
                        as numeric(18, 4)
                    )
        end as consumption_vs_peers_ratio,
        compared.source_load_id
    from compared
    cross join policy
    where {{ gridcredit.reprocess_filter('compared.month_start_date', reprocess_from) }}

)

select * from final
