-- Staged `ml.consumption_forecasts`: renamed to the warehouse's conventions. One row per customer per
-- as-of month per horizon (1-3 months ahead).
-- Empty (same columns) until `gridcredit score` has created the table: see macro source_or_empty.
with

source as (

    select * from {{ gridcredit.source_or_empty('ml', 'consumption_forecasts', [
            'customer_id text',
            'as_of_month date',
            'target_month date',
            'horizon integer',
            'kwh_forecast double precision',
            'global_model_kwh double precision',
            'seasonal_naive_kwh double precision',
            'method text',
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
        source.target_month,
        source.horizon as horizon_months,
        source.kwh_forecast as forecast_kwh,
        source.seasonal_naive_kwh,
        source.method as forecast_method,
        source.is_in_training_window,
        source.run_id,
        source.model_version,
        source.scored_at
    from source

)

select * from renamed
