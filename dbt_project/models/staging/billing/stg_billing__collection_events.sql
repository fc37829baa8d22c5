with

source as (

    select * from {{ source('billing', 'collection_events') }}

),

deduplicated as (

    {{ gridcredit.latest_load_per_key('source', ['event_id']) }}

),

renamed as (

    select
        deduplicated.event_id as collection_event_id,
        deduplicated.customer_id,
        deduplicated.event_type as collection_event_type,
        cast(nullif(deduplicated.event_date, '') as date) as event_date,
        deduplicated._load_id as load_id
    from deduplicated

)

select * from renamed
