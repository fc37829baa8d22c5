with

source as (

    select * from {{ source('registry', 'legal_events') }}

),

deduplicated as (

    {{ gridcredit.latest_load_per_key('source', ['legal_event_id']) }}

),

renamed as (

    select
        deduplicated.legal_event_id,
        deduplicated.enterprise_id,
        deduplicated.event_type as legal_event_type,
        cast(nullif(deduplicated.event_date, '') as date) as event_date,
        cast(nullif(deduplicated.amount, '') as numeric(18, 2)) as claim_amount,
        deduplicated._load_id as load_id
    from deduplicated

)

select * from renamed
