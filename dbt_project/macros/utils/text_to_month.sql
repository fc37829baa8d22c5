{#-
    A month value as the first day of that month (date), from text 'YYYY-MM' / 'YYYY-MM-DD' or a
    date/timestamp (the load ledger and the extracts both carry months).
-#}
{% macro text_to_month(expression) -%}
    {{ return(adapter.dispatch('text_to_month', 'gridcredit')(expression)) }}
{%- endmacro %}

{% macro default__text_to_month(expression) -%}
    cast(
        {{ dbt.concat(["substring(" ~ dbt.cast(expression, dbt.type_string()) ~ " from 1 for 7)", "'-01'"]) }}
        as date
    )
{%- endmacro %}
