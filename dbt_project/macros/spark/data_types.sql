{#-
    Spark spellings of the PostgreSQL type names used in contracts and seed column_types, so one
    YAML serves both engines: text -> string, double precision -> double, timestamptz -> timestamp.
    numeric / numeric(p, s) / integer / bigint / boolean / date are valid Spark SQL as written.
-#}
{% macro spark_data_type(data_type) -%}
    {%- set normalised = (data_type | string).strip().lower() -%}
    {%- set translations = {
        'text': 'string',
        'double precision': 'double',
        'timestamptz': 'timestamp',
        'timestamp with time zone': 'timestamp',
        'timestamp without time zone': 'timestamp',
    } -%}
    {{- translations.get(normalised, data_type) -}}
{%- endmacro %}

{#- dbt.cast on Spark (contracts build their empty schema query with it): translated type names. -#}
{% macro spark__cast(field, type) -%}
    cast({{ field }} as {{ gridcredit.spark_data_type(type) }})
{%- endmacro %}

{#-
    Contract comparison on Spark: decimals compare by family, as dbt-postgres compares `numeric`
    (PostgreSQL reports no precision for query columns). Spark widens decimal precision through
    arithmetic (sum of decimal(18, 2) is decimal(28, 2)), so an exact comparison would fail
    on every computed amount although names and type families match.
-#}
{% macro spark__format_column(column) -%}
    {%- set data_type = column.dtype -%}
    {%- if data_type.lower().startswith('decimal') -%}
        {%- set data_type = 'decimal' -%}
    {%- endif -%}
    {{ return({'name': column.name, 'data_type': data_type, 'formatted': column.column.lower() ~ ' ' ~ data_type}) }}
{%- endmacro %}
