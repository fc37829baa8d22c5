{#- A date as its month for plain-words explanations ("2024-03"). -#}
{% macro format_month(date_expression) -%}
    {{ return(adapter.dispatch('format_month', 'gridcredit')(date_expression)) }}
{%- endmacro %}

{% macro default__format_month(date_expression) -%}
    substr(cast({{ date_expression }} as {{ dbt.type_string() }}), 1, 7)
{%- endmacro %}
