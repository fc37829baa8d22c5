with

source as (

    select * from {{ source('billing', 'supply_regions') }}

),

deduplicated as (

    {{ gridcredit.latest_load_per_key('source', ['region_code']) }}

),

renamed as (

    select
        deduplicated.region_code,
        deduplicated.region_name,
        deduplicated.city_code,
        deduplicated.city_name,
        deduplicated._load_id as load_id
    from deduplicated

)

select * from renamed
