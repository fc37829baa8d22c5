-- The load ledger written by `gridcredit ingest`: one row per file load. Only loads that
-- committed (status 'loaded') count; months are normalised to the first day of the month.
with

source as (

    select * from {{ source('ops', 'load_ledger') }}

),

renamed as (

    select
        source.load_id,
        source.system as source_system,
        source.table_name,
        source.file_path,
        source.extract_kind,
        {{ gridcredit.text_to_month('source.first_month') }} as first_month,
        {{ gridcredit.text_to_month('source.last_month') }} as last_month,
        source.rows_loaded,
        source.finished_at as loaded_at
    from source
    where source.status = 'loaded'

)

select * from renamed
