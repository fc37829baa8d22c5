-- Every delivered version of every bill (all loads, not deduplicated), typed: the raw side of the
-- reconciliation with the extract manifests (fct_reconciliation_months). stg_billing__bills keeps
-- only the latest version of each bill; is_latest_version marks it here by the same rule (highest
-- load, then highest line), recomputed from the raw table rather than read from that model.
with

source as (

    select * from {{ source('billing', 'bills') }}

),

renamed as (

    select
        source.bill_id,
        source._load_id as load_id,
        cast(nullif(source.issue_date, '') as date) as issue_date,
        cast(nullif(source.amount, '') as numeric(18, 2)) as bill_amount,
        source.bill_status,
        row_number() over (
            partition by source.bill_id
            order by source._load_id desc, source._line_number desc
        ) = 1 as is_latest_version
    from source

)

select * from renamed
