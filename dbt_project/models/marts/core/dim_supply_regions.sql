-- Supply regions: one row per supply region (county-level area) with its city.
with

regions as (

    select * from {{ ref('stg_billing__supply_regions') }}

),

final as (

    select
        regions.region_code,
        regions.region_name,
        regions.city_code,
        regions.city_name
    from regions

)

select * from final
