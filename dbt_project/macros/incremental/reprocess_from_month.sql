{#-
    Which months an incremental model must (re)build in this run, as text:
      'all'          full build (first run, --full-refresh, or not incremental);
      'none'         nothing new in the load ledger since this model's last build;
      'YYYY-MM-DD'   first month touched by a load the model has not seen yet: that month and every
                     later one are rebuilt (balances are cumulative, so a correction of month m
                     changes every month from m on).
    `month_ledger` is int_load_ledger_months: one row per month with `source_load_id`, the newest
    load that can change that month. Each incremental model stores that value on its rows, so the
    comparison needs no state outside the model and a rerun with no new load changes nothing.
    `reached_back_by` (optional) is a relation of the same two columns for loads that change months
    before their own ledger range for this model (int_payment_reversals_reaching_back: a reversal
    re-allocates payments from the reversed payment's month, docs/decisions/0107).
-#}
{% macro reprocess_from_month(month_ledger, reached_back_by=none) -%}
    {{ return(adapter.dispatch('reprocess_from_month', 'gridcredit')(month_ledger, reached_back_by)) }}
{%- endmacro %}

{% macro default__reprocess_from_month(month_ledger, reached_back_by=none) -%}
    {%- if not execute or not is_incremental() -%}
        {{ return('all') }}
    {%- endif -%}
    {%- set query -%}
        with seen as (
            select coalesce(max(existing.source_load_id), -1) as source_load_id from {{ this }} as existing
        ),

        touched as (
            select months.month_start_date, months.source_load_id from {{ month_ledger }} as months
            {%- if reached_back_by is not none %}
            union all
            select reached.month_start_date, reached.source_load_id from {{ reached_back_by }} as reached
            {%- endif %}
        )

        select {{ dbt.cast('min(touched.month_start_date)', dbt.type_string()) }} as reprocess_from
        from touched
        where touched.source_load_id > (select seen.source_load_id from seen)
    {%- endset -%}
    {%- set value = run_query(query).columns[0].values()[0] -%}
    {%- do log(this.identifier ~ ": reprocessing months from " ~ (value or 'nowhere (no new load)'), info=true) -%}
    {{ return(value if value else 'none') }}
{%- endmacro %}
