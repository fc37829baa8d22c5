with

source as (

    select * from {{ source('inspection', 'inspections') }}

),

deduplicated as (

    {{ gridcredit.latest_load_per_key('source', ['inspection_id']) }}

),

renamed as (

    select
        deduplicated.inspection_id,
        deduplicated.customer_id,
        cast(nullif(deduplicated.inspection_date, '') as date) as inspection_date,
        deduplicated.trigger as inspection_trigger,
        deduplicated.outcome as inspection_outcome,
        cast(nullif(deduplicated.recovered_amount, '') as numeric(18, 2)) as recovered_amount,
        deduplicated._load_id as load_id
    from deduplicated

)

select * from renamed
