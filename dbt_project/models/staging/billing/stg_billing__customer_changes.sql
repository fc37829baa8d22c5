with

source as (

    select * from {{ source('billing', 'customer_changes') }}

),

deduplicated as (

    {{ gridcredit.latest_load_per_key('source', ['change_id']) }}

),

renamed as (

    select
        deduplicated.change_id as customer_change_id,
        deduplicated.customer_id,
        deduplicated.attribute as changed_attribute,
        nullif(deduplicated.old_value, '') as old_value,
        deduplicated.new_value,
        cast(nullif(deduplicated.effective_date, '') as date) as effective_date,
        deduplicated._load_id as load_id
    from deduplicated

)

select * from renamed
