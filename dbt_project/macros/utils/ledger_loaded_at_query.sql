{#-
    Source freshness from the load ledger: when the latest successful load of this raw table
    finished. Used as `loaded_at_query` on every raw source (`this` is the source relation
    raw_<system>.<table>), so freshness reflects deliveries, not row contents.
-#}
{% macro ledger_loaded_at_query(source_relation) -%}
    {{ return(adapter.dispatch('ledger_loaded_at_query', 'gridcredit')(source_relation)) }}
{%- endmacro %}

{% macro default__ledger_loaded_at_query(source_relation) -%}
    select max(ledger.finished_at)
    from ops.load_ledger as ledger
    where {{ gridcredit.committed_loads_of(source_relation) }}
{%- endmacro %}

{#- The load ledger's rows (alias `ledger`) of the committed loads of a raw table: `source_relation`
    is raw_<system>.<table>. Shared by freshness and the staging tables' single-load check. -#}
{% macro committed_loads_of(source_relation) -%}
    ledger.status = 'loaded'
        and ledger.system = '{{ source_relation.schema | replace("raw_", "", 1) }}'
        and ledger.table_name = '{{ source_relation.identifier }}'
{%- endmacro %}
