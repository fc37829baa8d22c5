-- Staged `ml.theft_suspicion`: renamed to the warehouse's conventions. One row per customer per as-of month.
-- Empty (same columns) until `gridcredit score` has created the table: see macro source_or_empty.
with

source as (

    select * from {{ gridcredit.source_or_empty('ml', 'theft_suspicion', [
            'customer_id text',
            'as_of_month date',
            'suspicion_score double precision',
            'supervised_probability double precision',
            'anomaly_score double precision',
            'suspicion_rank integer',
            'is_on_inspection_list boolean',
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
        source.suspicion_score,
        source.supervised_probability,
        source.anomaly_score,
        source.suspicion_rank,
        source.is_on_inspection_list,
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
