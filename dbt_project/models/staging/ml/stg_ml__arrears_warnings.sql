-- Staged `ml.arrears_warnings`: renamed to the warehouse's conventions. One row per customer per as-of month.
-- Empty (same columns) until `gridcredit score` has created the table: see macro source_or_empty.
with

source as (

    select * from {{ gridcredit.source_or_empty('ml', 'arrears_warnings', [
            'customer_id text',
            'as_of_month date',
            'probability double precision',
            'warning_level text',
            'risk_rank integer',
            'industry_code text',
            'region_code text',
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
        source.probability as arrears_probability,
        source.warning_level,
        source.risk_rank,
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
