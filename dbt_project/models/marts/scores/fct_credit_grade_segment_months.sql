-- Credit grades pre-aggregated for the dashboards: one row per as-of month, supply region,
-- industry, customer type, final grade, model grade and 10-point score band. Charts on grade mix,
-- score distribution and overrides read this instead of the customer-month scores (a hundred
-- times fewer rows at 100k customers); sums, never averages, so any roll-up stays exact.
with

scores as (

    select * from {{ ref('fct_customer_month_scores') }}

),

final as (

    select
        {{ gridcredit.surrogate_key([
            'as_of_month', 'region_code', 'industry_code', 'customer_type', 'final_grade', 'model_grade', 'score_band',
        ]) }} as grade_segment_month_id,
        as_of_month,
        region_code,
        industry_code,
        customer_type,
        final_grade,
        model_grade,
        score_band,
        cast(count(*) as integer) as customer_count,
        cast(sum(score) as bigint) as score_sum,
        {{ gridcredit.exact_float_sum('bad_12m_probability') }} as bad_12m_probability_sum,
        cast(sum(case when is_grade_overridden then 1 else 0 end) as integer) as overridden_customer_count,
        cast(sum(case when is_in_training_window then 1 else 0 end) as integer) as in_training_window_customer_count
    from scores
    group by as_of_month, region_code, industry_code, customer_type, final_grade, model_grade, score_band

)

select * from final
