-- The extract manifests' totals per month, per committed load (`ops.manifest_month_totals`,
-- written by `gridcredit ingest` in the load's own transaction from the file's manifest entry),
-- with the part of them the load refused (rejected lines). Months as dates; a null month holds
-- rejected lines whose month or amount could not be read.
with

source as (

    select * from {{ source('ops', 'manifest_month_totals') }}

),

renamed as (

    select
        source.load_id,
        {{ gridcredit.text_to_month('source.month') }} as month_start_date,
        source.column_name,
        source.manifest_rows,
        cast(source.manifest_total as numeric(18, 2)) as manifest_amount,
        source.rejected_rows,
        cast(source.rejected_total as numeric(18, 2)) as rejected_amount,
        source.rejected_unreadable_rows
    from source

)

select * from renamed
