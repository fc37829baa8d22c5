{#-
    The sign rule of an amount column: `non_negative` (>= 0), `positive` (> 0) or `non_positive`
    (<= 0). Fails on every non-null value breaking the rule. A column whose both signs are legitimate
    (a balance, a net amount) declares `config: meta: {sign: any}` instead: a test accepting every
    value could never fail (tests/test_dbt_test_rules.py reads the declaration).
-#}
{% test sign_rule(model, column_name, sign) %}
    {{ return(adapter.dispatch('test_sign_rule', 'gridcredit')(model, column_name, sign)) }}
{% endtest %}

{% macro default__test_sign_rule(model, column_name, sign) %}
    {%- set rules = {
        'non_negative': column_name ~ ' < 0',
        'positive': column_name ~ ' <= 0',
        'non_positive': column_name ~ ' > 0',
    } -%}
    {%- if sign not in rules -%}
        {{ exceptions.raise_compiler_error("sign_rule: sign must be one of " ~ (rules.keys() | list | sort) ~ ", got " ~ sign) }}
    {%- endif %}
select *
from {{ model }}
where {{ column_name }} is not null
    and {{ rules[sign] }}
{% endmacro %}
