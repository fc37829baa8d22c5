{#-
    Deterministic surrogate key from a list of column expressions: md5 of the values joined with
    '-', nulls as a fixed marker (same idea as dbt_utils.generate_surrogate_key).
-#}
{% macro surrogate_key(field_list) -%}
    {{ return(adapter.dispatch('surrogate_key', 'gridcredit')(field_list)) }}
{%- endmacro %}

{% macro default__surrogate_key(field_list) -%}
    {%- set fields = [] -%}
    {%- for field in field_list -%}
        {%- do fields.append("coalesce(" ~ dbt.cast(field, dbt.type_string()) ~ ", '_gridcredit_null_')") -%}
        {%- if not loop.last -%}
            {%- do fields.append("'-'") -%}
        {%- endif -%}
    {%- endfor -%}
    {{ dbt.hash(dbt.concat(fields)) }}
{%- endmacro %}
