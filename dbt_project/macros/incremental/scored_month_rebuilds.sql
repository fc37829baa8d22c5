{#-
    The log of months the scored-month models rebuilt (docs/decisions/0110), one row per model per
    build: `rebuilt_from` is reprocess_from_scored_month()'s answer ('all', 'none' or 'YYYY-MM-DD':
    that month and every later one). The pipeline's scoped tests read it (macros/tests/
    get_where_subquery.sql): a rescored month has no new load, so ADR 0021's load-based scope cannot
    see it, and a test needs to know which months a build since the last publication rewrote.

    Written by the model while it compiles, on its own connection and before its materialization
    begins: dbt-postgres opens a transaction for it there, which the materialization commits with the
    model's rows (or rolls back with them), so a record exists exactly when the rows it names were
    written. Lives in `intermediate` (built in place, never published, owned by the transformer
    role); data engineers can read it as a history of what each build rebuilt. PostgreSQL only: on
    Spark the models build in place and nothing is recorded.
-#}
{% macro scored_month_rebuilds() -%}
    {{ return(api.Relation.create(
        database=target.database,
        schema=generate_schema_name('intermediate', none) | trim,
        identifier='scored_month_rebuilds',
        type='table',
    )) }}
{%- endmacro %}

{% macro record_scored_month_rebuild(month_column, rebuilt_from) -%}
    {{ return(adapter.dispatch('record_scored_month_rebuild', 'gridcredit')(month_column, rebuilt_from)) }}
{%- endmacro %}

{#- Spark builds these models in place, with no write-audit-publish and so no scoped tests
    (docs/SPARK.md): nothing to record. -#}
{% macro spark__record_scored_month_rebuild(month_column, rebuilt_from) -%}
{%- endmacro %}

{% macro default__record_scored_month_rebuild(month_column, rebuilt_from) -%}
    {#- Only a build writes rows: `dbt compile`, `docs generate` and `show` render models too. -#}
    {%- if not execute or flags.WHICH not in ('run', 'build') or model.resource_type != 'model' -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set log_relation = gridcredit.scored_month_rebuilds() -%}
    {#- Two models building in parallel may both create the table on the first build: the second
        waits for the first's transaction, then fails on the catalog's unique index, or finds the
        table's row type already there ("type ... already exists"), neither of which `if not exists`
        covers; the table exists by then. -#}
    {%- set statement -%}
        do $gridcredit$
        begin
            create table if not exists {{ log_relation }} (
                model_unique_id {{ dbt.type_string() }} not null,
                relation_name {{ dbt.type_string() }} not null,
                month_column {{ dbt.type_string() }} not null,
                rebuilt_from {{ dbt.type_string() }} not null,
                invocation_id {{ dbt.type_string() }} not null,
                recorded_at timestamp with time zone not null default current_timestamp
            );
        exception when duplicate_table or duplicate_object or unique_violation then
            null;
        end
        $gridcredit$;
        insert into {{ log_relation }} (model_unique_id, relation_name, month_column, rebuilt_from, invocation_id)
        values (
            {{ dbt.string_literal(model.unique_id) }}, {{ dbt.string_literal(this | string) }},
            {{ dbt.string_literal(month_column) }}, {{ dbt.string_literal(rebuilt_from) }},
            {{ dbt.string_literal(invocation_id) }}
        )
    {%- endset -%}
    {%- do run_query(statement) -%}
{%- endmacro %}
