{#- An amount as text for plain-words explanations: whole yuan with thousands separators ("12,300"). -#}
{% macro format_amount(amount_expression) -%}
    {{ return(adapter.dispatch('format_amount', 'gridcredit')(amount_expression)) }}
{%- endmacro %}

{% macro default__format_amount(amount_expression) -%}
    cast(cast(round({{ amount_expression }}, 0) as bigint) as {{ dbt.type_string() }})
{%- endmacro %}

{% macro postgres__format_amount(amount_expression) -%}
    trim(to_char(round({{ amount_expression }}, 0), 'FM999,999,999,999,990'))
{%- endmacro %}
