{#- A date expression moved by a whole number of months, as a date. -#}
{% macro add_months(date_expression, months) -%}
    {{ return(adapter.dispatch('add_months', 'gridcredit')(date_expression, months)) }}
{%- endmacro %}

{% macro default__add_months(date_expression, months) -%}
    cast({{ dbt.dateadd('month', months, date_expression) }} as date)
{%- endmacro %}
