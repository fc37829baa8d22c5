{#- Exception to staging views (docs/decisions/0013-incremental-staging-for-large-tables.md): one
    of the three large, ever-growing extracts. As a view its dedupe (a sort of every load) ran again
    in every model and test that reads it; as an incremental table each load is deduplicated once,
    and a later load's rows replace the earlier version of their key (delete+insert on the key).
    The BRIN index on load_id finds the newest staged load and the rows an incremental run's scoped
    tests read (docs/decisions/0103). -#}
{{
    config(
        materialized='incremental',
        unique_key='payment_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        meta={'written_by_load': 'load_id'},
        post_hook='{{ gridcredit.analyze_table(this) }}',
        indexes=[{'columns': ['load_id'], 'type': 'brin'}, {'columns': ['payment_id'], 'unique': True}],
    )
}}
with

deduplicated as (

    {{ gridcredit.unstaged_rows_latest_per_key(source('billing', 'payments'), ['payment_id']) }}

),

renamed as (

    select
        deduplicated.payment_id,
        deduplicated.customer_id,
        cast(nullif(deduplicated.paid_at, '') as timestamp) as paid_at,
        cast(nullif(deduplicated.amount, '') as numeric(18, 2)) as payment_amount,
        deduplicated.channel as payment_channel,
        nullif(deduplicated.reverses_payment_id, '') as reverses_payment_id,
        deduplicated._load_id as load_id
    from deduplicated

)

select * from renamed
