{#- A rate 0-1 as a whole percentage for plain-words explanations ("30%"). -#}
{% macro format_rate(rate_expression) -%}
    {{ return(adapter.dispatch('format_rate', 'gridcredit')(rate_expression)) }}
{%- endmacro %}

{% macro default__format_rate(rate_expression) -%}
    cast(cast(round(({{ rate_expression }}) * 100, 0) as integer) as {{ dbt.type_string() }}) || '%'
{%- endmacro %}
