{#- Fails on every combination of the given columns that occurs more than once (a compound key). -#}
{% test unique_combination_of_columns(model, combination_of_columns) %}
    {{ return(adapter.dispatch('test_unique_combination_of_columns', 'gridcredit')(model, combination_of_columns)) }}
{% endtest %}

{% macro default__test_unique_combination_of_columns(model, combination_of_columns) %}
select
    {{ combination_of_columns | join(', ') }},
    count(*) as occurrences
from {{ model }}
group by {{ combination_of_columns | join(', ') }}
having count(*) > 1
{% endmacro %}

{#-
    PostgreSQL: when the table has a valid unique index on exactly these columns and every one of
    them is NOT NULL, PostgreSQL itself guarantees the combination is unique, and the grouping scan
    is skipped (the condition is a one-time filter, evaluated before the scan). Without such an
    index (dropped, invalid, partial, other columns, a nullable column) the test groups the whole
    table as above. docs/decisions/0018.
-#}
{% macro postgres__test_unique_combination_of_columns(model, combination_of_columns) %}
{%- if model is string or not model.identifier %}
{{ gridcredit.default__test_unique_combination_of_columns(model, combination_of_columns) }}
{%- else %}
{%- set wanted = combination_of_columns | map('lower') | sort %}
select
    {{ combination_of_columns | join(', ') }},
    count(*) as occurrences
from {{ model }}
where not exists (
    select 1
    from pg_catalog.pg_index as key_index
    where
        key_index.indrelid = to_regclass('{{ model.schema }}.{{ model.identifier }}')
        and key_index.indisunique
        and key_index.indisvalid
        and key_index.indpred is null
        and key_index.indexprs is null
        and key_index.indnkeyatts = {{ wanted | length }}
        and (
            select array_agg(cast(key_column.attname as text) order by key_column.attname)
            from pg_catalog.pg_attribute as key_column
            where
                key_column.attrelid = key_index.indrelid
                and key_column.attnum = any(key_index.indkey)
                and key_column.attnotnull
        ) = array[{% for column in wanted %}'{{ column }}'{{ ', ' if not loop.last }}{% endfor %}]
)
group by {{ combination_of_columns | join(', ') }}
having count(*) > 1
{%- endif %}
{% endmacro %}
