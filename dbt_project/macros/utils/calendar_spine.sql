{#-
    One row per day from start_date to end_date (inclusive), column `date_day`. Dates are literals
    ('YYYY-MM-DD'); the number of days is computed at compile time, so the query needs no
    database round trip and no engine-specific series function (dbt.generate_series).
-#}
{% macro calendar_spine(start_date, end_date) -%}
    {{ return(adapter.dispatch('calendar_spine', 'gridcredit')(start_date, end_date)) }}
{%- endmacro %}

{% macro default__calendar_spine(start_date, end_date) -%}
    {%- set start = modules.datetime.date.fromisoformat(start_date) -%}
    {%- set end = modules.datetime.date.fromisoformat(end_date) -%}
    {%- set days = (end - start).days + 1 -%}
    select
        {{ gridcredit.add_days("cast('" ~ start_date ~ "' as date)", "series.generated_number - 1") }} as date_day
    from ({{ dbt.generate_series(days) }}) as series
{%- endmacro %}
