-- Scores with the customer's segments: one row per customer per scored as-of month. The credit
-- score and grades, the arrears warning and the theft suspicion of the ML step, joined with the
-- region, industry, customer type, tariff and value tier the customer had that month, and the
-- final grade of the month before (grade migration), so BI can drill any score by any segment.
-- The segments come from the feature mart's row of the month (one join: it already carries the
-- customer-month's attributes and the value tier), not from joining the customer-month again.
-- Incremental by as-of month (ADR 0098): a run rebuilds from the first month with a new load or new
-- scores; last month's grade needs the month before the first rebuilt one.
{%- set reprocess_from = gridcredit.incremental_by_scored_month([
    ref('stg_ml__credit_scores'), ref('stg_ml__arrears_warnings'), ref('stg_ml__theft_suspicion'),
]) %}

with

credit_scores as (

    select * from {{ ref('stg_ml__credit_scores') }}
    where {{ gridcredit.reprocess_filter('as_of_month', reprocess_from, lookback_months=1) }}

),

arrears_warnings as (

    select * from {{ ref('stg_ml__arrears_warnings') }}
    where {{ gridcredit.reprocess_filter('as_of_month', reprocess_from) }}

),

theft_suspicion as (

    select * from {{ ref('stg_ml__theft_suspicion') }}
    where {{ gridcredit.reprocess_filter('as_of_month', reprocess_from) }}

),

features as (

    select * from {{ ref('fct_customer_month_features') }}
    where {{ gridcredit.reprocess_filter('as_of_month', reprocess_from) }}

),

with_previous_grade as (

    select
        credit_scores.*,
        lag(credit_scores.final_grade) over customer_history as previous_final_grade,
        lag(credit_scores.as_of_month) over customer_history as previous_as_of_month
    from credit_scores
    window customer_history as (partition by credit_scores.customer_id order by credit_scores.as_of_month)

),

final as (

    select
        {{ gridcredit.surrogate_key(['scores.customer_id', 'scores.as_of_month']) }} as customer_month_id,
        scores.customer_id,
        scores.as_of_month,
        features.region_code,
        features.industry_code,
        features.customer_type,
        features.tariff_code,
        features.value_tier,
        scores.score,
        {{ gridcredit.score_band('scores.score') }} as score_band,
        scores.bad_12m_probability,
        scores.model_grade,
        scores.final_grade,
        {{ gridcredit.grade_rank('scores.final_grade') }} as final_grade_rank,
        scores.model_grade <> scores.final_grade as is_grade_overridden,
        scores.grade_override_reason,
        scores.reason_1,
        scores.reason_2,
        scores.reason_3,
        -- Only a score of the calendar month before counts as "last month's grade".
        case
            when scores.previous_as_of_month = {{ gridcredit.add_months('scores.as_of_month', -1) }}
                then scores.previous_final_grade
        end as previous_final_grade,
        arrears_warnings.arrears_probability,
        arrears_warnings.warning_level,
        theft_suspicion.suspicion_score,
        theft_suspicion.is_on_inspection_list,
        scores.is_in_training_window,
        scores.model_version,
        features.source_load_id,
        greatest(scores.scored_at, arrears_warnings.scored_at, theft_suspicion.scored_at) as scored_at
    from with_previous_grade as scores
    left join features
        on
            scores.customer_id = features.customer_id
            and scores.as_of_month = features.as_of_month
    left join arrears_warnings
        on
            scores.customer_id = arrears_warnings.customer_id
            and scores.as_of_month = arrears_warnings.as_of_month
    left join theft_suspicion
        on
            scores.customer_id = theft_suspicion.customer_id
            and scores.as_of_month = theft_suspicion.as_of_month
    where {{ gridcredit.reprocess_filter('scores.as_of_month', reprocess_from) }}

)

select * from final
