{#-
    Custom schemas are used verbatim (staging, intermediate, marts_core, ...) instead of dbt's
    default "<target schema>_<custom schema>": the schema names are a published interface
    (Superset, the ML step and the role grants of later issues name them).
-#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema | trim }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
