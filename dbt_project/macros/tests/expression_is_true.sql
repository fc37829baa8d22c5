{#- Fails on every row where the boolean expression is not true (applied to a model or a column). -#}
{% test expression_is_true(model, expression, column_name=none) %}
    {{ return(adapter.dispatch('test_expression_is_true', 'gridcredit')(model, expression, column_name)) }}
{% endtest %}

{% macro default__test_expression_is_true(model, expression, column_name) %}
select *
from {{ model }}
where not (
    {%- if column_name is not none %} {{ column_name }} {% endif %} {{ expression }}
)
{% endmacro %}
