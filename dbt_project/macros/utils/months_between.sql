{#- Whole calendar months from the month of start_date to the month of end_date (end - start). -#}
{% macro months_between(start_date, end_date) -%}
    {{ return(adapter.dispatch('months_between', 'gridcredit')(start_date, end_date)) }}
{%- endmacro %}

{% macro default__months_between(start_date, end_date) -%}
    {{ dbt.datediff(start_date, end_date, 'month') }}
{%- endmacro %}
