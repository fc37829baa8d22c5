{#-
    Custom schemas are used verbatim (staging, intermediate, marts_core, ...) instead of dbt's
    default "<target schema>_<custom schema>": the schema names are a published interface
    (Superset, the ML step and the role grants name them).

    Write-audit-publish (docs/decisions/0090-write-audit-publish.md): with `--vars
    '{build_area: true}'` (what `gridcredit run` passes) every published schema (`reference` and
    `marts*`) is built as `<schema>__build`; its tests run there and `gridcredit run` switches the
    build area in only when every error-severity test passed. Staging and intermediate are not
    published and are built in place.
-#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema | trim }}
    {%- elif var('build_area', false) and gridcredit.is_published_schema(custom_schema_name | trim) -%}
        {{ custom_schema_name | trim }}__build
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}

{#- Schemas that Superset and analysts read; gridcredit/publish.py holds the same rule. -#}
{% macro is_published_schema(schema_name) -%}
    {{ return(schema_name == 'reference' or schema_name.startswith('marts')) }}
{%- endmacro %}
