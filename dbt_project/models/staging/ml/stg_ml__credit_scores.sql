-- Staged `ml.credit_scores`: renamed to the warehouse's conventions. One row per customer per as-of month.
-- Empty (same columns) until `gridcredit score` has created the table: see macro source_or_empty.
with

source as (

    select * from {{ gridcredit.source_or_empty('ml', 'credit_scores', [
            'customer_id text',
            'as_of_month date',
            'score integer',
            'points double precision',
            'probability_bad double precision',
            'model_grade text',
            'final_grade text',
            'override_reason text',
            'reason_1 text',
            'reason_2 text',
            'reason_3 text',
            'reason_codes text',
            'is_in_training_window boolean',
            'run_id text',
            'model_version text',
            'scored_at timestamptz',
        ]) }}

),

renamed as (

    select
        source.customer_id,
        source.as_of_month,
        source.score,
        source.points as scorecard_points,
        source.probability_bad as bad_12m_probability,
        source.model_grade,
        source.final_grade,
        source.override_reason as grade_override_reason,
        source.reason_1,
        source.reason_2,
        source.reason_3,
        source.reason_codes,
        source.is_in_training_window,
        source.run_id,
        source.model_version,
        source.scored_at
    from source

)

select * from renamed
