-- The consumption forecast of the next three months side by side: one row per customer per as-of
-- month, kWh per horizon and their mean (the basis of the expected monthly bill).
with

forecasts as (

    select * from {{ ref('stg_ml__consumption_forecasts') }}

),

final as (

    select
        forecasts.customer_id,
        forecasts.as_of_month,
        max(case when forecasts.horizon_months = 1 then forecasts.forecast_kwh end) as forecast_kwh_month_1,
        max(case when forecasts.horizon_months = 2 then forecasts.forecast_kwh end) as forecast_kwh_month_2,
        max(case when forecasts.horizon_months = 3 then forecasts.forecast_kwh end) as forecast_kwh_month_3,
        {{ gridcredit.exact_float_avg('forecasts.forecast_kwh') }} as mean_forecast_kwh
    from forecasts
    where forecasts.horizon_months between 1 and 3
    group by forecasts.customer_id, forecasts.as_of_month

)

select * from final
