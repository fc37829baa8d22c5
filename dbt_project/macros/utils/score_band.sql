{#-
    Ten-point band of a 0-100 credit score as sortable text ('00-09' ... '80-89', '90-100'); the
    bands' edges are the grade cut-offs (C < 60 <= B < 70 <= A < 80 <= AA < 90 <= AAA).
-#}
{% macro score_band(score_expression) -%}
    {{ return(adapter.dispatch('score_band', 'gridcredit')(score_expression)) }}
{%- endmacro %}

{% macro default__score_band(score_expression) -%}
    case
        when {{ score_expression }} is null then null
        when {{ score_expression }} >= 90 then '90-100'
        {%- for low in range(80, -1, -10) %}
        when {{ score_expression }} >= {{ low }} then '{{ "%02d" % low }}-{{ "%02d" % (low + 9) }}'
        {%- endfor %}
        else '00-09'
    end
{%- endmacro %}
