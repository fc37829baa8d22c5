{#-
    Refresh the planner statistics of a table just built (post-hook of intermediate models, marts
    and the incremental staging tables; docs/decisions/0012-intermediate-models-as-tables.md).
    PostgreSQL: `analyze`. Spark: nothing; it plans from file sizes (its cost-based optimiser,
    which would use `analyze table ... compute statistics`, is off by default) and an empty hook is
    skipped.
-#}
{% macro analyze_table(relation) -%}
    {{ return(adapter.dispatch('analyze_table', 'gridcredit')(relation)) }}
{%- endmacro %}

{% macro default__analyze_table(relation) -%}
    analyze {{ relation }}
{%- endmacro %}

{% macro spark__analyze_table(relation) -%}
{%- endmacro %}
