{#- Rank of a credit grade: 1 = AAA (best) ... 5 = C (worst); null for anything else. -#}
{% macro grade_rank(grade_expression) -%}
    {{ return(adapter.dispatch('grade_rank', 'gridcredit')(grade_expression)) }}
{%- endmacro %}

{% macro default__grade_rank(grade_expression) -%}
    case {{ grade_expression }}
        when 'AAA' then 1
        when 'AA' then 2
        when 'A' then 3
        when 'B' then 4
        when 'C' then 5
    end
{%- endmacro %}
