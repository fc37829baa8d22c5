{#-
    WHERE clause for an incremental staging table: only rows of loads newer than the newest load
    already in the table (the load id is rendered as a literal, so PostgreSQL prunes the raw table's
    per-load partitions at plan time). Renders nothing on a full build.
-#}
{% macro new_loads_only(load_id_column='_load_id') -%}
    {{ return(adapter.dispatch('new_loads_only', 'gridcredit')(load_id_column)) }}
{%- endmacro %}

{% macro default__new_loads_only(load_id_column) -%}
    {%- if execute and is_incremental() -%}
        {%- set newest = run_query('select coalesce(max(load_id), -1) from ' ~ this).columns[0].values()[0] -%}
        where {{ load_id_column }} > {{ newest }}
    {%- endif -%}
{%- endmacro %}
