{#- Exception to staging views (docs/decisions/0013-incremental-staging-for-large-tables.md): one
    of the three large, ever-growing extracts. As a view its dedupe (a sort of every load) ran again
    in every model and test that reads it; as an incremental table each load is deduplicated once,
    and a later load's rows replace the earlier version of their key (delete+insert on the key).
    The key has a unique index and NOT NULL columns (docs/decisions/0018): PostgreSQL refuses a
    duplicate, the delete of delete+insert finds the replaced rows through the index, and the
    uniqueness test reads the catalogue instead of grouping 11M rows on every build. -#}
{{
    config(
        materialized='incremental',
        unique_key=['meter_id', 'reading_date'],
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        post_hook=[
            "{{ gridcredit.require_not_null(this, ['meter_id', 'reading_date']) }}",
            "{{ gridcredit.analyze_table(this) }}",
        ],
        indexes=[
            {'columns': ['meter_id', 'reading_date'], 'unique': True},
            {'columns': ['reading_date'], 'type': 'brin'},
        ],
    )
}}
{#- One load's keys are unique already (docs/decisions/0099): skip the dedupe's sort then. -#}
{%- set newest = gridcredit.newest_staged_load_id() -%}
{%- set single_load = gridcredit.committed_loads_after(source('metering', 'readings'), newest) <= 1 -%}
with

source as (

    select * from {{ source('metering', 'readings') }}
    {{ gridcredit.new_loads_only(newest=newest) }}

),

deduplicated as (

    {{ gridcredit.latest_load_per_key('source', ['meter_id', 'reading_date'], single_load=single_load) }}

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
