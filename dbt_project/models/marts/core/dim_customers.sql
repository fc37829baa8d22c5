-- Current view of each customer account: one row per customer, attributes as of today (the
-- current version of the customer history), no personal data.
with

customers as (

    select * from {{ ref('stg_billing__customers') }}

),

history as (

    select * from {{ ref('int_customers_historised') }}
    where is_current

),

final as (

    select
        customers.customer_id,
        history.customer_version_id,
        customers.customer_kind,
        customers.is_organisation,
        customers.enterprise_id,
        customers.birth_year,
        customers.gender,
        customers.has_phone,
        customers.has_email,
        history.region_code,
        history.industry_code,
        history.customer_type,
        history.voltage_level,
        history.tariff_code,
        history.settlement_method,
        history.payment_method,
        history.contract_capacity_kva,
        customers.open_date,
        customers.close_date,
        customers.close_date is null as is_account_open
    from customers
    inner join history
        on customers.customer_id = history.customer_id

)

select * from final
