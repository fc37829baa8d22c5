{#-
    The header of every model incremental by month (docs/decisions/0011, 0017): configures the
    model (delete+insert of whole months on `unique_key`, schema changes fail) and returns which
    months this run rebuilds, as reprocess_from_month() answers ('all', 'none' or 'YYYY-MM-DD'):

        {%- set reprocess_from = gridcredit.incremental_by_month() %}

    Rows store `source_load_id` from int_load_ledger_months, which the next run compares.
    `meta.rebuilt_by_month` names the month column for the tests (macros/tests/get_where_subquery.sql:
    the pipeline's incremental run tests only the months changed since the last tested run); the
    index on it lets those tests and the delete of delete+insert read one month, not all history
    (docs/decisions/0021). Spark has no indexes and ignores it.
    Every such model with a customer_id (`customer_keyed`; not the segment aggregates) is also
    indexed by (customer_id, month), the key its readers join on
    (docs/decisions/0100-one-month-joins-at-100k.md): an incremental run reads one month of each,
    PostgreSQL underestimates the join of two such months (the two key columns are correlated), and
    with only the month index it looked up each row by scanning its whole month
    (fct_customer_months ran 727 s for one month at 100k, its full build 38 s).
    Every such model is also indexed by `source_load_id`: reprocess_from_month() reads its newest
    value at the start of each run, which without the index read the whole table (88.5 s of the
    steady-state month at 100k over all incremental models, 31.6 s for fct_credit_decisions alone:
    docs/decisions/0109).
    `reached_back_by`: see reprocess_from_month().
    `primary_key` (optional): a column the database holds unique (a unique index), so the `unique`
    test reads the catalogue instead of grouping the table (docs/decisions/0113).
-#}
{% macro incremental_by_month(unique_key='month_start_date', customer_keyed=true, reached_back_by=none, primary_key=none) -%}
    {%- set indexes = [{'columns': [unique_key]}, {'columns': ['source_load_id']}] -%}
    {%- if primary_key -%}
        {%- do indexes.append({'columns': [primary_key], 'unique': True}) -%}
    {%- endif -%}
    {%- if customer_keyed -%}
        {%- do indexes.append({'columns': ['customer_id', unique_key]}) -%}
    {%- endif -%}
    {{- config(
        materialized='incremental',
        unique_key=unique_key,
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        meta={'rebuilt_by_month': unique_key},
        indexes=indexes,
    ) -}}
    {{- return(gridcredit.reprocess_from_month(ref('int_load_ledger_months'), reached_back_by)) -}}
{%- endmacro %}
