with

source as (

    select * from {{ source('macro', 'industry_activity') }}

),

deduplicated as (

    {{ gridcredit.latest_load_per_key('source', ['industry_code', 'activity_month']) }}

),

renamed as (

    select
        deduplicated.industry_code,
        {{ gridcredit.text_to_month('deduplicated.activity_month') }} as activity_month,
        cast(nullif(deduplicated.activity_index, '') as numeric(12, 4)) as activity_index,
        deduplicated._load_id as load_id
    from deduplicated

)

select * from renamed
