-- Consumption forecast against what was metered: one row per target month, horizon, supply
-- region, industry and customer type. Sums of the customers' forecasts, seasonal-naive baselines,
-- metered kWh and absolute errors (segments as of the forecast's as-of month), so forecast error
-- rolls up to any segment as a ratio of sums (WAPE = absolute error / actual).
-- Incremental by target month (docs/decisions/0098, 0104): a run rebuilds from the first target month
-- with a new load (its actuals) or with forecasts published anew; the segments come from the as-of
-- months, which are earlier, so the customer months are read from the first as-of month on.
{%- set reprocess_from = gridcredit.incremental_by_scored_month(
    [ref('stg_ml__consumption_forecasts')],
    unique_key='target_month',
    score_month_column='target_month',
) %}
with

forecasts as (

    select * from {{ ref('stg_ml__consumption_forecasts') }}
    where {{ gridcredit.reprocess_filter('target_month', reprocess_from) }}

),

customer_months as (

    select * from {{ ref('fct_customer_months') }}
    {%- if reprocess_from not in ('all', 'none') %}
    where month_start_date >= (select min(first_forecasts.as_of_month) from forecasts as first_forecasts)
    {%- endif %}

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
        forecasts.is_in_training_window,
        actuals.source_load_id,
        forecasts.scored_at
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
        max(case when is_in_training_window then 1 else 0 end) = 1 as is_in_training_window,
        max(source_load_id) as source_load_id,
        max(scored_at) as scored_at
    from paired
    group by target_month, horizon_months, region_code, industry_code, customer_type

)

select * from final
