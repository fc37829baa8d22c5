{#-
    WHERE clause for an incremental staging table: only rows of loads newer than the newest load
    already in the table (the load id is rendered as a literal, so PostgreSQL prunes the raw table's
    per-load partitions at plan time). Renders nothing on a full build. `newest` is
    `newest_staged_load_id(source)`, read once by the caller, which needs it twice.
-#}
{% macro new_loads_only(newest, load_id_column='_load_id') -%}
    {{ return(adapter.dispatch('new_loads_only', 'gridcredit')(newest, load_id_column)) }}
{%- endmacro %}

{% macro default__new_loads_only(newest, load_id_column) -%}
    {%- if execute and is_incremental() -%}
        where {{ load_id_column }} > {{ newest }}
    {%- endif -%}
{%- endmacro %}

{#-
    The newest load id already in this incremental table (-1 when empty); none on a full build or
    at parse time. `max(load_id)` scanned the whole table (26.5 s over 112.5 M readings at 100k), so
    the committed loads of the source are probed newest first (docs/decisions/0103): the first one
    with a row in the table is the newest staged. A probe is one `limit 1` lookup through the
    table's BRIN index on load_id (rows are appended load after load); an increment needs two (the
    new, unstaged load, then the last staged one). The answer can only be an id present in the
    table, so it is never above the true newest: at worst loads are staged again, which
    delete+insert on the key makes harmless. After `max_probes` misses it falls back to the scan.
-#}
{% macro newest_staged_load_id(source_relation, max_probes=8) -%}
    {%- if execute and is_incremental() -%}
        {%- set candidates_query -%}
            select ledger.load_id
            from ops.load_ledger as ledger
            where {{ gridcredit.committed_loads_of(source_relation) }}
            order by ledger.load_id desc
            limit {{ max_probes }}
        {%- endset -%}
        {%- for candidate in run_query(candidates_query).columns[0].values() -%}
            {%- set probe = 'select 1 from ' ~ this ~ ' where load_id = ' ~ candidate ~ ' limit 1' -%}
            {%- if run_query(probe).rows | length > 0 -%}
                {{ return(candidate) }}
            {%- endif -%}
        {%- endfor -%}
        {{ return(run_query('select coalesce(max(load_id), -1) from ' ~ this).columns[0].values()[0]) }}
    {%- endif -%}
    {{ return(none) }}
{%- endmacro %}

{#-
    How many committed loads of a raw table `new_loads_only(newest=newest)` lets through, from the
    load ledger (one raw partition per committed load). Ingestion refuses a file with a duplicate key,
    so rows of ONE load have unique keys and need no dedupe (docs/decisions/0099). At parse time it
    answers 2 (the general case).
-#}
{% macro committed_loads_after(source_relation, newest) -%}
    {%- if not execute -%}
        {{ return(2) }}
    {%- endif -%}
    {%- set loads_query -%}
        select count(*)
        from ops.load_ledger as ledger
        where {{ gridcredit.committed_loads_of(source_relation) }}
            {%- if newest is not none %}
            and ledger.load_id > {{ newest }}
            {%- endif %}
    {%- endset -%}
    {{ return(run_query(loads_query).columns[0].values()[0] | int) }}
{%- endmacro %}

{#-
    The body of an incremental staging table: the rows of loads it has not staged yet (all loads on a
    full build), keeping per key only the latest load's row. When those rows come from one committed
    load, ingestion already made their keys unique, so they pass without the dedupe's sort
    (docs/decisions/0099). `source_relation` is the model's source().
-#}
{% macro unstaged_rows_latest_per_key(source_relation, key_columns) -%}
    {%- set newest = gridcredit.newest_staged_load_id(source_relation) -%}
    {%- set unstaged -%}
        (select * from {{ source_relation }} {{ gridcredit.new_loads_only(newest=newest) }})
    {%- endset -%}
    {%- set single_load = gridcredit.committed_loads_after(source_relation, newest) <= 1 -%}
    {{ return(gridcredit.latest_load_per_key(unstaged, key_columns, single_load=single_load)) }}
{%- endmacro %}
