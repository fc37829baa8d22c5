{#- Last day of the month of a date expression, as a date. -#}
{% macro month_end(date_expression) -%}
    {{ return(adapter.dispatch('month_end', 'gridcredit')(date_expression)) }}
{%- endmacro %}

{% macro default__month_end(date_expression) -%}
    {{ dbt.last_day(date_expression, 'month') }}
{%- endmacro %}
