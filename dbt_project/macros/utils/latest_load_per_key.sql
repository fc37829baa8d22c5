{#-
    The rows of a raw table, keeping per key only the row of the latest load (highest _load_id, then
    highest _line_number). A corrected re-delivery of a file is a later load, so it wins.
    Used by every staging model; `relation` is a source() relation or a CTE over one.
    `single_load`: the caller knows every row comes from one load (`committed_loads_after`), whose
    keys ingestion already made unique: the rows pass unsorted (docs/decisions/0099; the window's sort
    of ~110M readings was the slowest node of the 100k build).
-#}
{% macro latest_load_per_key(relation, key_columns, single_load=false) -%}
    {{ return(adapter.dispatch('latest_load_per_key', 'gridcredit')(relation, key_columns, single_load)) }}
{%- endmacro %}

{% macro default__latest_load_per_key(relation, key_columns, single_load=false) -%}
    {%- if single_load %}
    select loaded.*
    from {{ relation }} as loaded
    {%- else %}
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
    {%- endif %}
{%- endmacro %}
