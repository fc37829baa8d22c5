with

source as (

    select * from {{ source('billing', 'deposits') }}

),

deduplicated as (

    {{ gridcredit.latest_load_per_key('source', ['deposit_txn_id']) }}

),

renamed as (

    select
        deduplicated.deposit_txn_id as deposit_transaction_id,
        deduplicated.customer_id,
        cast(nullif(deduplicated.txn_date, '') as date) as transaction_date,
        deduplicated.txn_type as transaction_type,
        cast(nullif(deduplicated.amount, '') as numeric(18, 2)) as transaction_amount,
        deduplicated._load_id as load_id
    from deduplicated

)

select * from renamed
