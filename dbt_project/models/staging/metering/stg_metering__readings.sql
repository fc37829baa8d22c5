{#- Exception to staging views (docs/decisions/0013-incremental-staging-for-large-tables.md): one
    of the three large, ever-growing extracts. As a view its dedupe (a sort of every load) ran again
    in every model and test that reads it; as an incremental table each load is deduplicated once,
    and a later load's rows replace the earlier version of their key (delete+insert on the key).
    The key has a unique index and NOT NULL columns (docs/decisions/0018): PostgreSQL refuses a
    duplicate, the delete of delete+insert finds the replaced rows through the index, and the
    uniqueness test reads the catalogue instead of grouping 11M rows on every build.
    docs/decisions/0103: the delete is bounded by the new rows' reading_date range (a new month
    deletes nothing, without 3.26 M index probes at 100k); the BRIN index on load_id finds the newest
    staged load and the rows an incremental run's scoped tests read (`meta.written_by_load`). -#}
{{
    config(
        materialized='incremental',
        unique_key=['meter_id', 'reading_date'],
        incremental_strategy='delete+insert',
        delete_bounded_by='reading_date',
        on_schema_change='fail',
        meta={'written_by_load': 'load_id'},
        post_hook=[
            "{{ gridcredit.require_not_null(this, ['meter_id', 'reading_date']) }}",
            "{{ gridcredit.analyze_table(this) }}",
        ],
        indexes=[
            {'columns': ['meter_id', 'reading_date'], 'unique': True},
            {'columns': ['reading_date'], 'type': 'brin'},
            {'columns': ['load_id'], 'type': 'brin'},
        ],
    )
}}
with

deduplicated as (

    {{ gridcredit.unstaged_rows_latest_per_key(source('metering', 'readings'), ['meter_id', 'reading_date']) }}

),

renamed as (

    select
        deduplicated.meter_id,
        cast(nullif(deduplicated.reading_date, '') as date) as reading_date,
        cast(nullif(deduplicated.kwh, '') as numeric(18, 3)) as consumption_kwh,
        deduplicated.quality as reading_quality,
        deduplicated._load_id as load_id
    from deduplicated

)

select * from renamed
