{#-
    `select * from` a source table, or an empty relation with the given columns when the table does not
    exist yet. For sources written by a later pipeline stage (the ML step's `ml.*`): before the first
    `gridcredit score` the models reading them build empty instead of failing, and the lineage to the
    source stays (source() is always called).

    columns: list of "name type" strings, e.g. ["customer_id text", "score integer"].
-#}
{% macro source_or_empty(source_name, table_name, columns) -%}
    {{ return(adapter.dispatch('source_or_empty', 'gridcredit')(source_name, table_name, columns)) }}
{%- endmacro %}

{% macro default__source_or_empty(source_name, table_name, columns) -%}
    {%- set relation = source(source_name, table_name) -%}
    {%- if execute and load_relation(relation) is none -%}
    {{ gridcredit.not_yet_written(table_name, columns) }}
    {%- else -%}
    {{ relation }}
    {%- endif -%}
{%- endmacro %}

{#- PostgreSQL asks the catalog, not dbt's relation cache: with 2 threads a second node could read a
    schema's cache while dbt was still filling it and see an existing ml table as missing, so a
    published mart came out empty (session 8; the same symptom as dbt-adapters issue 366). -#}
{% macro postgres__source_or_empty(source_name, table_name, columns) -%}
    {%- set relation = source(source_name, table_name) -%}
    {%- if execute -%}
        {%- set exists_query -%}
            select to_regclass('{{ relation.include(database=false) }}') is not null
        {%- endset -%}
        {%- set exists = run_query(exists_query).columns[0].values()[0] -%}
    {%- endif -%}
    {%- if execute and not exists -%}
    {{ gridcredit.not_yet_written(table_name, columns) }}
    {%- else -%}
    {{ relation }}
    {%- endif -%}
{%- endmacro %}

{#- The empty stand-in: the source's columns, typed, no rows. -#}
{% macro not_yet_written(table_name, columns) -%}
    (
        select
            {%- for column in columns %}
            {%- set parts = column.split(' ', 1) %}
            {{ dbt.cast("null", parts[1]) }} as {{ parts[0] }}{{ ',' if not loop.last }}
            {%- endfor %}
        where 1 = 0
    ) as {{ table_name }}_not_yet_written
{%- endmacro %}
