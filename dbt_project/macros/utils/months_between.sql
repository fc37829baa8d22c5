{#- Whole calendar months from the month of start_date to the month of end_date (end - start). -#}
{% macro months_between(start_date, end_date) -%}
    {{ return(adapter.dispatch('months_between', 'gridcredit')(start_date, end_date)) }}
{%- endmacro %}

{% macro default__months_between(start_date, end_date) -%}
    {{ dbt.datediff(start_date, end_date, 'month') }}
{%- endmacro %}

{#- dbt-spark's datediff(month) goes through months_between() and rounds day fractions; this is
    the calendar-month difference the PostgreSQL build computes. -#}
{% macro spark__months_between(start_date, end_date) -%}
    ((year({{ end_date }}) - year({{ start_date }})) * 12 + month({{ end_date }}) - month({{ start_date }}))
{%- endmacro %}
