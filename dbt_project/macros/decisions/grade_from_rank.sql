{#- Credit grade of a rank (1 = AAA ... 5 = C); a fractional rank (an exposure-weighted mean) is rounded. -#}
{% macro grade_from_rank(rank_expression) -%}
    {{ return(adapter.dispatch('grade_from_rank', 'gridcredit')(rank_expression)) }}
{%- endmacro %}

{% macro default__grade_from_rank(rank_expression) -%}
    case cast(round({{ rank_expression }}) as integer)
        when 1 then 'AAA'
        when 2 then 'AA'
        when 3 then 'A'
        when 4 then 'B'
        when 5 then 'C'
    end
{%- endmacro %}
