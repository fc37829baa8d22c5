-- Customer history (SCD type 2): one row per customer per version of its attributes, valid from
-- valid_from (inclusive) to valid_to (exclusive; null for the current version).
with

history as (

    select * from {{ ref('int_customers_historised') }}

),

final as (

    select
        history.customer_version_id,
        history.customer_id,
        history.valid_from,
        history.valid_to,
        history.is_current,
        history.customer_type,
        history.tariff_code,
        history.region_code,
        history.settlement_method,
        history.payment_method,
        history.contract_capacity_kva,
        history.voltage_level,
        history.industry_code
    from history

)

select * from final
