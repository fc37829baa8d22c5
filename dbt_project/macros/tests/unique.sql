{#-
    dbt's `unique` test on PostgreSQL (found before dbt's own: root-project macros come first). When
    the table has a valid, non-partial unique index on exactly this column, PostgreSQL itself refuses
    a duplicate, and the grouping scan is skipped: the condition is a one-time filter, evaluated
    before the scan. Without such an index (dropped, invalid, partial, on other columns, a view, a
    scoped subquery) the test groups the whole table as dbt's does. Nulls are not counted, as in
    dbt's test, and a unique index lets them repeat. docs/decisions/0018, 0113.
-#}
{% macro postgres__test_unique(model, column_name) %}
{%- if model is string or not model.identifier %}
{{ dbt.default__test_unique(model, column_name) }}
{%- else %}
select
    {{ column_name }} as unique_field,
    count(*) as n_records
from {{ model }}
where
    {{ column_name }} is not null
    and not exists (
        select 1
        from pg_catalog.pg_index as key_index
        inner join pg_catalog.pg_attribute as key_column
            on
                key_index.indrelid = key_column.attrelid
                and key_column.attnum = key_index.indkey[0]
        where
            key_index.indrelid = to_regclass('{{ model.schema }}.{{ model.identifier }}')
            and key_index.indisunique
            and key_index.indisvalid
            and key_index.indpred is null
            and key_index.indexprs is null
            and key_index.indnkeyatts = 1
            and cast(key_column.attname as text) = '{{ column_name | lower }}'
    )
group by {{ column_name }}
having count(*) > 1
{%- endif %}
{% endmacro %}
