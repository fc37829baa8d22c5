{#-
    dbt's delete+insert, with the delete bounded by the range of one column of the new rows when the
    model sets `delete_bounded_by='<column>'` in its config (docs/decisions/0103). Replaces dbt's
    default__ of the same name (root-project macros come first); a model without the setting gets
    dbt's SQL unchanged.

    Why: `stg_metering__readings` (112.5 M rows at 100k x 36) deletes `where (meter_id, reading_date)
    in (new rows)`. PostgreSQL ran that as one unique-index probe per new row: 3.26 M probes, 55 s,
    for a new month whose rows match nothing. The new rows' range of `reading_date`, read from the
    temporary table as literals, lets the planner see from the BRIN index and its statistics that
    the range holds (almost) no rows. A replaced row has the key, so the same `reading_date`, as its
    replacement: inside the range, so the delete removes the same rows as without the bound.
-#}
{% macro default__get_incremental_delete_insert_sql(arg_dict) %}
    {%- set bound_column = config.get('delete_bounded_by') -%}
    {%- set predicates = arg_dict['incremental_predicates'] or [] -%}
    {%- if bound_column and execute -%}
        {%- set range_query -%}
            select
                {{ dbt.cast('min(' ~ bound_column ~ ')', dbt.type_string()) }},
                {{ dbt.cast('max(' ~ bound_column ~ ')', dbt.type_string()) }}
            from {{ arg_dict['temp_relation'] }}
        {%- endset -%}
        {%- set bounds = run_query(range_query).rows[0] -%}
        {%- set column_type = adapter.get_columns_in_relation(arg_dict['temp_relation'])
            | selectattr('name', 'equalto', bound_column) | map(attribute='data_type') | first -%}
        {%- if bounds[0] is none -%}
            {#- No new rows (or all null in the column: a key column is NOT NULL, so only no rows). -#}
            {%- set predicates = predicates + ['1 = 0'] -%}
        {%- else -%}
            {%- set predicates = predicates + [
                'DBT_INTERNAL_DEST.' ~ bound_column ~ " between cast('" ~ bounds[0] ~ "' as " ~ column_type
                ~ ") and cast('" ~ bounds[1] ~ "' as " ~ column_type ~ ")"
            ] -%}
        {%- endif -%}
    {%- endif -%}
    {%- do return(get_delete_insert_merge_sql(
        arg_dict['target_relation'], arg_dict['temp_relation'], arg_dict['unique_key'],
        arg_dict['dest_columns'], predicates,
    )) -%}
{% endmacro %}
