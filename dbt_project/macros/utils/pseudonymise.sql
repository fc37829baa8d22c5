{#-
    Pseudonym of a personal value (ID number, USCC), so that equal values can be compared without
    the clear value leaving staging.

    SEAM: today this is an unkeyed hash (dbt.hash = md5), which is enough to compare values but is
    not a safe pseudonym (resident ID numbers are guessable). The privacy issue replaces this body
    with a keyed hash (HMAC, key held outside the database) and moves clear values to the
    `restricted` schema; every caller goes through this one macro.
-#}
{% macro pseudonymise(column_expression) -%}
    {{ return(adapter.dispatch('pseudonymise', 'gridcredit')(column_expression)) }}
{%- endmacro %}

{% macro default__pseudonymise(column_expression) -%}
    case
        when {{ column_expression }} is null or {{ column_expression }} = '' then null
        else {{ dbt.hash("upper(trim(" ~ column_expression ~ "))") }}
    end
{%- endmacro %}
