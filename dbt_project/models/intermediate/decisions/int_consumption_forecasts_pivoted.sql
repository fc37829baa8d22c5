-- The consumption forecast of the next three months side by side: one row per customer per as-of
-- month, kWh per horizon and their mean (the basis of the expected monthly bill). Incremental by
-- as-of month (ADR 0098): a run rebuilds from the first month the ML step scored anew.
{%- set reprocess_from = gridcredit.incremental_by_scored_month(
    [ref('stg_ml__consumption_forecasts')], follows_loads=false,
) %}

with

forecasts as (

    select * from {{ ref('stg_ml__consumption_forecasts') }}
    where {{ gridcredit.reprocess_filter('as_of_month', reprocess_from) }}

),

final as (

    select
        forecasts.customer_id,
        forecasts.as_of_month,
        max(case when forecasts.horizon_months = 1 then forecasts.forecast_kwh end) as forecast_kwh_month_1,
        max(case when forecasts.horizon_months = 2 then forecasts.forecast_kwh end) as forecast_kwh_month_2,
        max(case when forecasts.horizon_months = 3 then forecasts.forecast_kwh end) as forecast_kwh_month_3,
        {{ gridcredit.exact_float_avg('forecasts.forecast_kwh') }} as mean_forecast_kwh,
        max(forecasts.scored_at) as scored_at
    from forecasts
    where forecasts.horizon_months between 1 and 3
    group by forecasts.customer_id, forecasts.as_of_month

)

select * from final
