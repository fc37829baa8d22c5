-- Every delivered version of every payment and reversal (all loads, not deduplicated), typed: the
-- raw side of the reconciliation with the extract manifests (fct_reconciliation_months).
-- stg_billing__payments keeps only the latest version; is_latest_version marks it here by the
-- same rule (highest load, then highest line), recomputed from the raw table.
with

source as (

    select * from {{ source('billing', 'payments') }}

),

renamed as (

    select
        source.payment_id,
        source._load_id as load_id,
        cast(nullif(source.paid_at, '') as timestamp) as paid_at,
        cast(nullif(source.amount, '') as numeric(18, 2)) as payment_amount,
        row_number() over (
            partition by source.payment_id
            order by source._load_id desc, source._line_number desc
        ) = 1 as is_latest_version
    from source

)

select * from renamed
