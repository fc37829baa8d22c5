{#-
    The rows of a raw table, keeping per key only the row of the latest load (highest _load_id, then
    highest _line_number). A corrected re-delivery of a file is a later load, so it wins.
    Used by every staging model; `relation` is a source() relation.
-#}
{% macro latest_load_per_key(relation, key_columns) -%}
    {{ return(adapter.dispatch('latest_load_per_key', 'gridcredit')(relation, key_columns)) }}
{%- endmacro %}

{% macro default__latest_load_per_key(relation, key_columns) -%}
    select ranked.*
    from (
        select
            loaded.*,
            row_number() over (
                partition by {{ key_columns | join(', ') }}
                order by loaded._load_id desc, loaded._line_number desc
            ) as _load_rank
        from {{ relation }} as loaded
    ) as ranked
    where ranked._load_rank = 1
{%- endmacro %}
