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
        {%- set month_key = test.name == 'unique_combination_of_columns'
            and month_column in (test.kwargs or {}).get('combination_of_columns', []) -%}
        {%- if month_column and (row_level or month_key) and tested_relation -%}
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
