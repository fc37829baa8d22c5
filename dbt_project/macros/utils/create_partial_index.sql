{#-
    A partial index (post-hook): a dashboard list that shows only flagged rows then reads about its row
    limit, instead of walking a full index past every unflagged row of each month, a cost that grows
    with customers. dbt's `indexes` config has no predicate, hence this macro. The name carries the
    invocation: the table materialization keeps the previous table (and its index names) until commit.
    Engines without indexes (Spark) get no statement, and dbt skips an empty hook.
-#}
{% macro create_partial_index(relation, columns, predicate, label) -%}
    {{ return(adapter.dispatch('create_partial_index', 'gridcredit')(relation, columns, predicate, label)) }}
{%- endmacro %}

{% macro default__create_partial_index(relation, columns, predicate, label) -%}
    create index {{ relation.identifier }}_{{ label }}_{{ local_md5(invocation_id)[:8] }}
        on {{ relation }} ({{ columns | join(', ') }}) where {{ predicate }}
{%- endmacro %}

{% macro spark__create_partial_index(relation, columns, predicate, label) -%}
{%- endmacro %}
