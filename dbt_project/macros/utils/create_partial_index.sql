{#-
    A partial index (post-hook): a dashboard list that shows only flagged rows then reads about its row
    limit, instead of walking a full index past every unflagged row of each month, a cost that grows
    with customers. dbt's `indexes` config has no predicate, hence this macro. The name carries the
    invocation: the table materialization keeps the previous table (and its index names) until commit.
    An incremental model keeps its table from run to run, so the index is created only when the table
    has none with this label yet, and any other index of the same definition is dropped. Before, each
    run of fct_credit_decisions (incremental since ADR 0104) added one more identical index
    (docs/decisions/0052, session 16).
    Engines without indexes (Spark) get no statement, and dbt skips an empty hook.
-#}
{% macro create_partial_index(relation, columns, predicate, label) -%}
    {{ return(adapter.dispatch('create_partial_index', 'gridcredit')(relation, columns, predicate, label)) }}
{%- endmacro %}

{% macro default__create_partial_index(relation, columns, predicate, label) -%}
    {%- set prefix = relation.identifier ~ '_' ~ label ~ '_' -%}
    do $gridcredit$
    declare
        kept text := (
            select min(indexname) from pg_indexes
            where schemaname = '{{ relation.schema }}' and tablename = '{{ relation.identifier }}'
                and starts_with(indexname, '{{ prefix }}')
        );
        wanted text;
        other text;
    begin
        if kept is null then
            kept := '{{ prefix }}{{ local_md5(invocation_id)[:8] }}';
            create index {{ prefix }}{{ local_md5(invocation_id)[:8] }}
                on {{ relation }} ({{ columns | join(', ') }}) where {{ predicate }};
        end if;
        -- Any other index of the same definition goes, whatever its name (the build area's catch-up
        -- copies a published table with its indexes, under names PostgreSQL makes up).
        select regexp_replace(indexdef, '^CREATE INDEX \S+ ON ', '') into wanted
        from pg_indexes where schemaname = '{{ relation.schema }}' and indexname = kept;
        for other in
            select indexname from pg_indexes
            where schemaname = '{{ relation.schema }}' and tablename = '{{ relation.identifier }}'
                and indexname <> kept and regexp_replace(indexdef, '^CREATE INDEX \S+ ON ', '') = wanted
        loop
            execute format('drop index %I.%I', '{{ relation.schema }}', other);
        end loop;
    end
    $gridcredit$
{%- endmacro %}

{% macro spark__create_partial_index(relation, columns, predicate, label) -%}
{%- endmacro %}
