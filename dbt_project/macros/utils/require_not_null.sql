{#-
    Declare columns NOT NULL on a table just built (post-hook), so PostgreSQL itself refuses a null
    key. A no-op when the columns already are (an incremental run); on a full build it validates
    the column with one scan. Spark: nothing (Parquet tables carry no such constraint; the
    not_null tests still run).
-#}
{% macro require_not_null(relation, columns) -%}
    {{ return(adapter.dispatch('require_not_null', 'gridcredit')(relation, columns)) }}
{%- endmacro %}

{% macro default__require_not_null(relation, columns) -%}
    alter table {{ relation }}
    {%- for column in columns %}
        alter column {{ column }} set not null{{ ',' if not loop.last }}
    {%- endfor %}
{%- endmacro %}

{% macro spark__require_not_null(relation, columns) -%}
{%- endmacro %}
