-- Metered consumption pre-aggregated for the dashboards: one row per month, supply region,
-- industry, customer type and tariff. Sums only (kWh, baseline kWh, customers), so any roll-up
-- and any ratio of sums stays exact; the consumption charts read this instead of the customer-month
-- mart (tens of times fewer rows at 100k customers).
with

customer_months as (

    select * from {{ ref('fct_customer_months') }}

),

final as (

    select
        {{ gridcredit.surrogate_key([
            'month_start_date', 'region_code', 'industry_code', 'customer_type', 'tariff_code',
        ]) }} as consumption_segment_month_id,
        month_start_date,
        region_code,
        industry_code,
        customer_type,
        tariff_code,
        cast(count(*) as integer) as customer_count,
        sum(consumption_kwh) as consumption_kwh,
        sum(billed_kwh) as billed_kwh,
        sum(case when baseline_consumption_kwh is not null then consumption_kwh end) as consumption_kwh_with_baseline,
        sum(baseline_consumption_kwh) as baseline_consumption_kwh
    from customer_months
    group by month_start_date, region_code, industry_code, customer_type, tariff_code

)

select * from final
