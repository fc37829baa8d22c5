-- Theft suspicion pre-aggregated for the dashboards: one row per as-of month, supply region,
-- industry, customer type and inspection-list flag. The suspicion trend charts read this instead
-- of the customer-level ml.theft_suspicion; sums, never averages (mean suspicion = score sum /
-- customer count), so any roll-up stays exact.
-- Incremental by as-of month (docs/decisions/0098, 0104): a run rebuilds from the first month with a
-- new load or new scores.
{%- set reprocess_from = gridcredit.incremental_by_scored_month([ref('stg_ml__theft_suspicion')]) %}
with

suspicion as (

    select * from {{ ref('stg_ml__theft_suspicion') }}
    where {{ gridcredit.reprocess_filter('as_of_month', reprocess_from) }}

),

customer_months as (

    select * from {{ ref('fct_customer_months') }}
    where {{ gridcredit.reprocess_filter('month_start_date', reprocess_from) }}

),

final as (

    select
        {{ gridcredit.surrogate_key([
            'suspicion.as_of_month', 'customer_months.region_code', 'customer_months.industry_code',
            'customer_months.customer_type', 'suspicion.is_on_inspection_list',
        ]) }} as suspicion_segment_month_id,
        suspicion.as_of_month,
        customer_months.region_code,
        customer_months.industry_code,
        customer_months.customer_type,
        suspicion.is_on_inspection_list,
        cast(count(*) as integer) as customer_count,
        {{ gridcredit.exact_float_sum('suspicion.suspicion_score') }} as suspicion_score_sum,
        {{ gridcredit.exact_float_sum('suspicion.anomaly_score') }} as anomaly_score_sum,
        cast(sum(case when suspicion.is_in_training_window then 1 else 0 end) as integer)
            as in_training_window_customer_count,
        max(customer_months.source_load_id) as source_load_id,
        max(suspicion.scored_at) as scored_at
    from suspicion
    left join customer_months
        on
            suspicion.customer_id = customer_months.customer_id
            and suspicion.as_of_month = customer_months.month_start_date
    group by
        suspicion.as_of_month,
        customer_months.region_code,
        customer_months.industry_code,
        customer_months.customer_type,
        suspicion.is_on_inspection_list

)

select * from final
