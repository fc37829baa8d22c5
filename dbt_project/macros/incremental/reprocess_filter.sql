{#-
    SQL predicate selecting the months to (re)build, from reprocess_from_month()'s answer.
    `lookback_months` widens the window for inputs of trailing measures (e.g. 12 months of history
    needed to compute the months being rebuilt).
-#}
{% macro reprocess_filter(month_column, reprocess_from, lookback_months=0) -%}
    {{ return(adapter.dispatch('reprocess_filter', 'gridcredit')(month_column, reprocess_from, lookback_months)) }}
{%- endmacro %}

{% macro default__reprocess_filter(month_column, reprocess_from, lookback_months) -%}
    {%- if reprocess_from == 'all' -%}
        1 = 1
    {%- elif reprocess_from == 'none' -%}
        1 = 0
    {%- elif lookback_months -%}
        {{ month_column }} >= {{ gridcredit.add_months("cast('" ~ reprocess_from ~ "' as date)", -lookback_months) }}
    {%- else -%}
        {{ month_column }} >= cast('{{ reprocess_from }}' as date)
    {%- endif -%}
{%- endmacro %}
