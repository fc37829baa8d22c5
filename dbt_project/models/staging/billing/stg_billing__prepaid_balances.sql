with

source as (

    select * from {{ source('billing', 'prepaid_balances') }}

),

deduplicated as (

    {{ gridcredit.latest_load_per_key('source', ['customer_id', 'balance_date']) }}

),

renamed as (

    select
        deduplicated.customer_id,
        cast(nullif(deduplicated.balance_date, '') as date) as balance_date,
        cast(nullif(deduplicated.balance_amount, '') as numeric(18, 2)) as prepaid_balance_amount,
        deduplicated._load_id as load_id
    from deduplicated

)

select * from renamed
