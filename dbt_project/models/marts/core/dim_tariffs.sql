-- Tariffs: one row per tariff category with its customer type and energy price.
with

tariffs as (

    select * from {{ ref('stg_billing__tariffs') }}

),

final as (

    select
        tariffs.tariff_code,
        tariffs.tariff_name,
        tariffs.customer_type,
        tariffs.price_per_kwh
    from tariffs

)

select * from final
