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
-#}
{% macro reprocess_from_month(month_ledger) -%}
    {{ return(adapter.dispatch('reprocess_from_month', 'gridcredit')(month_ledger)) }}
{%- endmacro %}

{% macro default__reprocess_from_month(month_ledger) -%}
    {%- if not execute or not is_incremental() -%}
        {{ return('all') }}
    {%- endif -%}
    {%- set query -%}
        select {{ dbt.cast('min(months.month_start_date)', dbt.type_string()) }} as reprocess_from
        from {{ month_ledger }} as months
        where months.source_load_id > (
            select coalesce(max(existing.source_load_id), -1) from {{ this }} as existing
        )
    {%- endset -%}
    {%- set value = run_query(query).columns[0].values()[0] -%}
    {%- do log(this.identifier ~ ": reprocessing months from " ~ (value or 'nowhere (no new load)'), info=true) -%}
    {{ return(value if value else 'none') }}
{%- endmacro %}
