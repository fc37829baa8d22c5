{#-
    `delete+insert` on Spark with plain Parquet tables (dbt-spark offers it only through MERGE on
    Delta/Iceberg/Hudi). Same rows as on PostgreSQL: the target keeps every row whose unique key is
    not among the new rows, plus the new rows. Parquet has no row-level delete, so the result is
    staged in a table and written back with `insert overwrite` (a rewrite of the table: cost grows
    with the table, not the increment; a Delta file_format would make it a MERGE).
    These two macros replace dbt-spark's of the same name (root-project macros come first).
-#}
{% macro dbt_spark_validate_get_incremental_strategy(raw_strategy, file_format) %}
    {%- set supported = ['append', 'merge', 'insert_overwrite', 'microbatch', 'delete+insert'] -%}
    {%- if raw_strategy not in supported -%}
        {%- do exceptions.raise_compiler_error(
            'Invalid incremental strategy provided: ' ~ raw_strategy ~ '; expected one of: ' ~ supported | join(', ')
        ) -%}
    {%- endif -%}
    {%- if raw_strategy == 'merge' and file_format not in ['delta', 'iceberg', 'hudi'] -%}
        {%- do exceptions.raise_compiler_error(
            'Invalid incremental strategy provided: merge needs file_format delta, iceberg or hudi'
        ) -%}
    {%- endif -%}
    {%- if raw_strategy in ['insert_overwrite', 'microbatch'] and target.endpoint -%}
        {%- do exceptions.raise_compiler_error(
            'Invalid incremental strategy provided: ' ~ raw_strategy ~ ' cannot be used through an endpoint'
        ) -%}
    {%- endif -%}
    {%- do return(raw_strategy) -%}
{% endmacro %}

{% macro dbt_spark_get_incremental_sql(strategy, source, target, existing, unique_key, incremental_predicates) %}
    {%- if strategy == 'delete+insert' -%}
        {{ gridcredit.spark_delete_insert_sql(source, target, unique_key) }}
    {%- elif strategy == 'append' -%}
        {{ get_insert_into_sql(source, target) }}
    {%- elif strategy in ['insert_overwrite', 'microbatch'] -%}
        {%- if strategy == 'microbatch' and not config.get('partition_by') -%}
            {{ exceptions.raise_compiler_error("dbt-spark 'microbatch' needs a `partition_by` config") }}
        {%- endif -%}
        {{ get_insert_overwrite_sql(source, target, existing) }}
    {%- elif strategy == 'merge' -%}
        {{ get_merge_sql(target, source, unique_key, dest_columns=none, incremental_predicates=incremental_predicates) }}
    {%- else -%}
        {{ exceptions.raise_compiler_error('No known SQL for the incremental strategy provided: ' ~ strategy) }}
    {%- endif -%}
{% endmacro %}

{% macro spark_delete_insert_sql(source, target, unique_key) %}
    {%- if not unique_key -%}
        {{ exceptions.raise_compiler_error('delete+insert on Spark needs a unique_key (' ~ target ~ ')') }}
    {%- endif -%}
    {%- set keys = [unique_key] if unique_key is string else unique_key -%}
    {%- set columns = adapter.get_columns_in_relation(target) | map(attribute='name') | list -%}
    {%- set column_list = '`' ~ columns | join('`, `') ~ '`' -%}
    {%- set staged = target.incorporate(path={'identifier': target.identifier ~ '__dbt_delete_insert'}) -%}
    {%- call statement('delete_insert_drop_stage') -%}
        drop table if exists {{ staged }}
    {%- endcall -%}
    {#- Staged first: the new rows' view may read the target, which `insert overwrite` truncates. -#}
    {%- call statement('delete_insert_stage') -%}
        create table {{ staged }} using parquet as
        select {{ column_list }}
        from {{ target }} as existing
        where not exists (
            select 1
            from {{ source }} as new_rows
            where {% for key in keys %}new_rows.`{{ key }}` = existing.`{{ key }}`{% if not loop.last %} and {% endif %}{% endfor %}
        )
        union all
        select {{ column_list }} from {{ source }}
    {%- endcall -%}
    {%- call statement('delete_insert_overwrite') -%}
        insert overwrite table {{ target }} select {{ column_list }} from {{ staged }}
    {%- endcall -%}
    drop table if exists {{ staged }}
{% endmacro %}
