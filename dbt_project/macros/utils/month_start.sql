{#- First day of the month of a date or timestamp expression, as a date. -#}
{% macro month_start(date_expression) -%}
    {{ return(adapter.dispatch('month_start', 'gridcredit')(date_expression)) }}
{%- endmacro %}

{% macro default__month_start(date_expression) -%}
    cast({{ dbt.date_trunc('month', date_expression) }} as date)
{%- endmacro %}
