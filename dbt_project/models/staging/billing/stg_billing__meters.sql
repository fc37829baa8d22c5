with

source as (

    select * from {{ source('billing', 'meters') }}

),

deduplicated as (

    {{ gridcredit.latest_load_per_key('source', ['meter_id']) }}

),

renamed as (

    select
        deduplicated.meter_id,
        deduplicated.customer_id,
        cast(nullif(deduplicated.install_date, '') as date) as install_date,
        cast(nullif(deduplicated.remove_date, '') as date) as remove_date,
        nullif(deduplicated.removal_reason, '') as removal_reason,
        deduplicated._load_id as load_id
    from deduplicated

)

select * from renamed
