-- Consumption forecast against what was metered: one row per target month, horizon, supply
-- region, industry and customer type. Sums of the customers' forecasts, seasonal-naive baselines,
-- metered kWh and absolute errors (segments as of the forecast's as-of month), so forecast error
-- rolls up to any segment as a ratio of sums (WAPE = absolute error / actual).
with

forecasts as (

    select * from {{ ref('stg_ml__consumption_forecasts') }}

),

customer_months as (

    select * from {{ ref('fct_customer_months') }}

),

paired as (

    select
        forecasts.target_month,
        forecasts.horizon_months,
        segments.region_code,
        segments.industry_code,
        segments.customer_type,
        forecasts.forecast_kwh,
        forecasts.seasonal_naive_kwh,
        cast(actuals.consumption_kwh as {{ dbt.type_float() }}) as actual_kwh,
        forecasts.is_in_training_window
    from forecasts
    left join customer_months as segments
        on
            forecasts.customer_id = segments.customer_id
            and forecasts.as_of_month = segments.month_start_date
    left join customer_months as actuals
        on
            forecasts.customer_id = actuals.customer_id
            and forecasts.target_month = actuals.month_start_date

),

final as (

    select
        {{ gridcredit.surrogate_key([
            'target_month', 'horizon_months', 'region_code', 'industry_code', 'customer_type',
        ]) }} as forecast_segment_month_id,
        target_month,
        horizon_months,
        region_code,
        industry_code,
        customer_type,
        cast(count(*) as integer) as customer_count,
        {{ gridcredit.exact_float_sum('forecast_kwh') }} as forecast_kwh,
        cast(sum(case when actual_kwh is not null then 1 else 0 end) as integer) as customers_with_actual_count,
        {{ gridcredit.exact_float_sum('actual_kwh') }} as actual_kwh,
        {{ gridcredit.exact_float_sum('case when actual_kwh is not null then forecast_kwh end') }}
            as forecast_kwh_with_actual,
        {{ gridcredit.exact_float_sum('abs(forecast_kwh - actual_kwh)') }} as forecast_absolute_error_kwh,
        {{ gridcredit.exact_float_sum('case when actual_kwh is not null then seasonal_naive_kwh end') }}
            as seasonal_naive_kwh_with_actual,
        {{ gridcredit.exact_float_sum('case when seasonal_naive_kwh is not null then actual_kwh end') }}
            as actual_kwh_with_seasonal_naive,
        {{ gridcredit.exact_float_sum('abs(seasonal_naive_kwh - actual_kwh)') }} as seasonal_naive_absolute_error_kwh,
        max(case when is_in_training_window then 1 else 0 end) = 1 as is_in_training_window
    from paired
    group by target_month, horizon_months, region_code, industry_code, customer_type

)

select * from final
