with

source as (

    select * from {{ source('metering', 'meter_events') }}

),

deduplicated as (

    {{ gridcredit.latest_load_per_key('source', ['event_id']) }}

),

renamed as (

    select
        deduplicated.event_id as meter_event_id,
        deduplicated.meter_id,
        cast(nullif(deduplicated.event_at, '') as timestamp) as event_at,
        deduplicated.event_type as meter_event_type,
        deduplicated._load_id as load_id
    from deduplicated

)

select * from renamed
