-- Arrears early warnings pre-aggregated for the dashboards: one row per as-of month, supply region,
-- industry, customer type and warning level. The warning trend charts read this instead of the
-- customer-level ml.arrears_warnings (which grows with customers x months); sums, never averages,
-- so any roll-up and any rate (probability sum / customer count) stays exact.
-- Incremental by as-of month (docs/decisions/0098, 0104): a run rebuilds from the first month with a
-- new load or new scores.
{%- set reprocess_from = gridcredit.incremental_by_scored_month([ref('stg_ml__arrears_warnings')]) %}
with

warnings as (

    select * from {{ ref('stg_ml__arrears_warnings') }}
    where {{ gridcredit.reprocess_filter('as_of_month', reprocess_from) }}

),

customer_months as (

    select * from {{ ref('fct_customer_months') }}
    where {{ gridcredit.reprocess_filter('month_start_date', reprocess_from) }}

),

final as (

    select
        {{ gridcredit.surrogate_key([
            'warnings.as_of_month', 'customer_months.region_code', 'customer_months.industry_code',
            'customer_months.customer_type', 'warnings.warning_level',
        ]) }} as warning_segment_month_id,
        warnings.as_of_month,
        customer_months.region_code,
        customer_months.industry_code,
        customer_months.customer_type,
        warnings.warning_level,
        cast(count(*) as integer) as customer_count,
        {{ gridcredit.exact_float_sum('warnings.arrears_probability') }} as arrears_probability_sum,
        cast(sum(case when warnings.is_in_training_window then 1 else 0 end) as integer)
            as in_training_window_customer_count,
        max(customer_months.source_load_id) as source_load_id,
        max(warnings.scored_at) as scored_at
    from warnings
    left join customer_months
        on
            warnings.customer_id = customer_months.customer_id
            and warnings.as_of_month = customer_months.month_start_date
    group by
        warnings.as_of_month,
        customer_months.region_code,
        customer_months.industry_code,
        customer_months.customer_type,
        warnings.warning_level

)

select * from final
