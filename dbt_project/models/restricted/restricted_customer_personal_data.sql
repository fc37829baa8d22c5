-- Clear personal data of each customer (latest delivery), with the pseudonym the marts carry.
-- Purged customers (ID number replaced by `purged:<pseudonym>`) are left out.
{{ config(alias='customer_personal_data') }}

with

source as (

    select * from {{ source('billing', 'customers') }}

),

deduplicated as (

    {{ gridcredit.latest_load_per_key('source', ['customer_id']) }}

),

personal as (

    select
        deduplicated.customer_id,
        {{ gridcredit.pseudonymise('deduplicated.id_number') }} as id_number_key,
        deduplicated.customer_kind,
        deduplicated.customer_name,
        deduplicated.id_number,
        nullif(deduplicated.phone, '') as phone,
        nullif(deduplicated.address, '') as address,
        nullif(deduplicated.email, '') as email,
        deduplicated.region_code,
        cast(nullif(deduplicated.close_date, '') as date) as close_date,
        deduplicated._load_id as load_id
    from deduplicated
    where deduplicated.id_number not like 'purged:%'

)

select * from personal
