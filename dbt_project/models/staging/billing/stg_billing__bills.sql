{#- Exception to staging views (docs/decisions/0013-incremental-staging-for-large-tables.md): one
    of the three large, ever-growing extracts. As a view its dedupe (a sort of every load) ran again
    in every model and test that reads it; as an incremental table each load is deduplicated once,
    and a later load's rows replace the earlier version of their key (delete+insert on the key).
    The BRIN index on load_id finds the newest staged load and the rows an incremental run's scoped
    tests read (docs/decisions/0103). -#}
{{
    config(
        materialized='incremental',
        unique_key='bill_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        meta={'written_by_load': 'load_id'},
        post_hook='{{ gridcredit.analyze_table(this) }}',
        indexes=[{'columns': ['load_id'], 'type': 'brin'}, {'columns': ['bill_id'], 'unique': True}],
    )
}}
with

deduplicated as (

    {{ gridcredit.unstaged_rows_latest_per_key(source('billing', 'bills'), ['bill_id']) }}

),

renamed as (

    select
        deduplicated.bill_id,
        deduplicated.customer_id,
        {{ gridcredit.text_to_month('deduplicated.billing_period') }} as billing_period_month,
        cast(nullif(deduplicated.issue_date, '') as date) as issue_date,
        cast(nullif(deduplicated.due_date, '') as date) as due_date,
        cast(nullif(deduplicated.kwh, '') as numeric(18, 3)) as billed_kwh,
        cast(nullif(deduplicated.amount, '') as numeric(18, 2)) as bill_amount,
        deduplicated.tariff_code,
        deduplicated.bill_status,
        deduplicated._load_id as load_id
    from deduplicated

)

select * from renamed
