{#-
    A partial index (post-hook): a dashboard list that shows only flagged rows then reads about its row
    limit, instead of walking a full index past every unflagged row of each month, a cost that grows
    with customers. dbt's `indexes` config has no predicate, hence this macro. The name carries the
    invocation: the table materialization keeps the previous table (and its index names) until commit.
    An incremental model keeps its table from run to run, so the index is created only when the table
    has none with this label yet; before, each run of fct_credit_decisions (incremental since ADR 0104)
    added one more identical index, and the extra ones are dropped here (ADR 0110).
    Engines without indexes (Spark) get no statement, and dbt skips an empty hook.
-#}
{% macro create_partial_index(relation, columns, predicate, label) -%}
    {{ return(adapter.dispatch('create_partial_index', 'gridcredit')(relation, columns, predicate, label)) }}
{%- endmacro %}

{% macro default__create_partial_index(relation, columns, predicate, label) -%}
    {%- set prefix = relation.identifier ~ '_' ~ label ~ '_' -%}
    do $gridcredit$
    declare
        labelled text[] := array(
            select indexname from pg_indexes
            where schemaname = '{{ relation.schema }}' and tablename = '{{ relation.identifier }}'
                and starts_with(indexname, '{{ prefix }}')
            order by indexname
        );
    begin
        if cardinality(labelled) = 0 then
            create index {{ prefix }}{{ local_md5(invocation_id)[:8] }}
                on {{ relation }} ({{ columns | join(', ') }}) where {{ predicate }};
        end if;
        for extra in 2..coalesce(cardinality(labelled), 0) loop
            execute format('drop index %I.%I', '{{ relation.schema }}', labelled[extra]);
        end loop;
    end
    $gridcredit$
{%- endmacro %}

{% macro spark__create_partial_index(relation, columns, predicate, label) -%}
{%- endmacro %}
