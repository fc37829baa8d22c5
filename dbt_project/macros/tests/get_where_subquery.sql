{#-
    dbt wraps the `model` argument of every generic test in get_where_subquery(); this project's
    version (it replaces dbt's, same signature) adds one condition to dbt's `where` config: in the
    pipeline's incremental run, a row-level test on a model rebuilt by whole months
    (incremental_by_month) reads only the months changed since the last run that tested every row
    under the same code (docs/decisions/0021-incremental-run-tests-changed-months.md).

    The pipeline sets GRIDCREDIT_TESTS_CHANGED_AFTER_LOAD_ID=N for its before-scoring build only when
    that holds (the previous two publishing runs ran the same code); without it (a first run, a code
    change, `gridcredit dbt build`, the test suite, Spark) every test reads the whole table, as
    before. An environment variable read at run time, not a dbt var: a var that changes between
    invocations makes dbt parse the whole project again.

    Scoped: not_null, accepted_values, accepted_range, expression_is_true, sign_rule and
    relationships (each row checked alone; relationships from the child's rows), and
    unique_combination_of_columns when the combination holds the month column (a duplicate sits
    within one month, and months are rebuilt whole). Everything else keeps the whole table: unique
    on one column (customer_month_id: duplicates could span months), row-count comparisons between
    models, singular tests.

    Tables written load by load (`meta.written_by_load` names the load column: the raw sources and
    the incremental staging tables, docs/decisions/0103): the row-level tests above read the rows of
    loads after N. A raw row never changes after its load, and a staged row is replaced only by a
    row of a newer load.

    Months changed since load N: those whose newest load (int_load_ledger_months.source_load_id) is
    after N. A row of an earlier month was written from loads up to N and is unchanged since a run
    tested it.

    Models incremental by scored month (incremental_by_scored_month: the scores, decisions and their
    segment marts, docs/decisions/0110) are rebuilt for new scores and overrides, not only new loads,
    so load N cannot tell their changed months. Each build records the months it rebuilds
    (scored_month_rebuilds); the same row-level and month-key tests read the months from the first
    one that any build since the last publication (ops.publications) rebuilt, this invocation's
    included. A build that did not publish (its run failed) left rows no published run tested, and
    the next build, seeing its markers current, rebuilds none of them: they stay in the scope until
    a publication. Only when this invocation built the model (a record of its own): `dbt test`
    alone reads whole tables.
-#}
{% macro get_where_subquery(relation) -%}
    {%- set conditions = [] -%}
    {%- set where = config.get('where', '') -%}
    {%- if where -%}
        {%- do conditions.append(where) -%}
    {%- endif -%}
    {%- set after_load = env_var('GRIDCREDIT_TESTS_CHANGED_AFTER_LOAD_ID', '') if execute else '' -%}
    {%- if after_load and model.resource_type == 'test' -%}
        {%- set tested = gridcredit.tested_node(model) -%}
        {%- set meta = (tested.config.meta or {}) if tested else {} -%}
        {%- set month_column = meta.get('rebuilt_by_month') -%}
        {%- set load_column = meta.get('written_by_load') -%}
        {%- set test = model.test_metadata or {} -%}
        {%- set row_level = test.name in [
            'not_null', 'accepted_values', 'accepted_range', 'expression_is_true', 'sign_rule', 'relationships',
        ] -%}
        {%- set tested_relation = tested and relation.identifier == (tested.alias or tested.identifier) -%}
        {%- set combination = (test.kwargs or {}).get('combination_of_columns', []) -%}
        {%- set scored = none -%}
        {%- if not month_column and not load_column and tested_relation and tested.config.materialized == 'incremental'
            and (row_level or test.name == 'unique_combination_of_columns') -%}
            {%- set scored = gridcredit.scored_months_to_test(tested) -%}
        {%- endif -%}
        {%- set month_key = test.name == 'unique_combination_of_columns'
            and (month_column or (scored or {}).get('month_column')) in combination -%}
        {%- if scored and (row_level or month_key) -%}
            {#- A model incremental by scored month built in this invocation (ADR 0110). -#}
            {%- if scored.first_month != 'all' -%}
                {%- do conditions.append(
                    scored.month_column ~ " >= cast('" ~ scored.first_month ~ "' as date)"
                    if scored.first_month else '1 = 0'
                ) -%}
            {%- endif -%}
        {%- elif month_column and (row_level or month_key) and tested_relation -%}
            {%- set ledger = graph.nodes['model.gridcredit.int_load_ledger_months'] -%}
            {%- set query -%}
                select {{ dbt.cast('min(month_start_date)', dbt.type_string()) }}
                from {{ ledger.database }}.{{ ledger.schema }}.{{ ledger.alias }}
                where source_load_id > {{ after_load | int }}
            {%- endset -%}
            {%- set first_month = run_query(query).columns[0].values()[0] -%}
            {%- if first_month -%}
                {%- do conditions.append(month_column ~ " >= cast('" ~ first_month ~ "' as date)") -%}
            {%- else -%}
                {#- No month changed since load N: nothing of this model to test again. -#}
                {%- do conditions.append('1 = 0') -%}
            {%- endif -%}
        {%- elif load_column and row_level and tested_relation -%}
            {#- Rows written by loads up to N are unchanged since a run tested them (ADR 0103). -#}
            {%- do conditions.append(load_column ~ ' > ' ~ (after_load | int)) -%}
        {%- endif -%}
    {%- endif -%}
    {%- if conditions -%}
        {%- set filtered -%}
            (select * from {{ relation }} where ({{ conditions | join(') and (') }})) dbt_subquery
        {%- endset -%}
        {%- do return(filtered) -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}

{#- The model or source a generic test is attached to: its `attached_node`, or for a test of a
    source (which has none) the one source it reads. None for anything else. -#}
{% macro tested_node(test_node) -%}
    {%- if test_node.attached_node -%}
        {{ return(graph.nodes.get(test_node.attached_node)) }}
    {%- endif -%}
    {%- if test_node.sources | length == 1 -%}
        {%- set source_name = test_node.sources[0] -%}
        {{ return(graph.sources.get('source.' ~ project_name ~ '.' ~ source_name[0] ~ '.' ~ source_name[1])) }}
    {%- endif -%}
    {{ return(none) }}
{%- endmacro %}

{#- The months of a model incremental by scored month that the pipeline's scoped tests read
    (ADR 0110): {'month_column': ..., 'first_month': 'YYYY-MM-DD', 'all', or none (no month)}, from
    the records of every build since the last publication; none when this invocation did not build
    the model (or it is not such a model), so that its tests read the whole table. -#}
{% macro scored_months_to_test(tested) -%}
    {%- set log_relation = gridcredit.scored_month_rebuilds() -%}
    {%- if adapter.get_relation(log_relation.database, log_relation.schema, log_relation.identifier) is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set query -%}
        select
            sum(case when invocation_id = {{ dbt.string_literal(invocation_id) }} then 1 else 0 end) as built_now,
            max(case when rebuilt_from = 'all' then 1 else 0 end) as rebuilt_all,
            min(case when rebuilt_from not in ('all', 'none') then rebuilt_from end) as first_month,
            max(month_column) as month_column
        from {{ log_relation }}
        where model_unique_id = {{ dbt.string_literal(tested.unique_id) }}
            and recorded_at > (
                select coalesce(max(published_at), cast('1900-01-01' as timestamp with time zone))
                from ops.publications
            )
    {%- endset -%}
    {%- set answer = run_query(query).rows[0] -%}
    {%- if not answer[0] -%}
        {{ return(none) }}
    {%- endif -%}
    {{ return({
        'month_column': answer[3],
        'first_month': 'all' if answer[1] else (answer[2] | string if answer[2] else none),
    }) }}
{%- endmacro %}
