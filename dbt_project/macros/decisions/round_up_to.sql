{#- An amount rounded up to a multiple of a unit (limits and deposits: 12,345 -> 12,400 for 100). -#}
{% macro round_up_to(amount_expression, unit_expression) -%}
    {{ return(adapter.dispatch('round_up_to', 'gridcredit')(amount_expression, unit_expression)) }}
{%- endmacro %}

{% macro default__round_up_to(amount_expression, unit_expression) -%}
    case
        when coalesce({{ unit_expression }}, 0) <= 0 then round({{ amount_expression }}, 2)
        else ceiling(({{ amount_expression }}) / ({{ unit_expression }})) * ({{ unit_expression }})
    end
{%- endmacro %}
