with

source as (

    select * from {{ source('billing', 'tariffs') }}

),

deduplicated as (

    {{ gridcredit.latest_load_per_key('source', ['tariff_code']) }}

),

renamed as (

    select
        deduplicated.tariff_code,
        deduplicated.tariff_name,
        deduplicated.customer_type,
        cast(nullif(deduplicated.price_per_kwh, '') as numeric(12, 4)) as price_per_kwh,
        deduplicated._load_id as load_id
    from deduplicated

)

select * from renamed
