{#-
    The header of a model built after scoring and incremental by as-of month (docs/decisions/0098):
    configures the model (delete+insert of whole months on `unique_key`, schema changes fail) and
    returns which months this run rebuilds, in reprocess_from_month()'s terms ('all', 'none' or
    'YYYY-MM-DD': that month and every later one):

        {%- set reprocess_from = gridcredit.incremental_by_scored_month([ref('stg_ml__credit_scores'), ...]) %}

    Such a model's rows change for two reasons, so it stores two markers and rebuilds from the first
    month either of them names:
      - `source_load_id` (from the feature mart's rows): a load the model has not seen, as
        reprocess_from_month() compares with the load ledger (`follows_loads=false` for a model that
        reads only score tables: no `source_load_id` then);
      - `scored_at` (the newest `scored_at` of the score tables' rows it joined; the first relation
        drives: its months are the model's): a month the ML step scored for the first time or again
        (a new model version rescores its whole window). The ML step stamps each month's rows with
        the time the run that scored them first published them (ml/schema.py), so a month whose
        newest `scored_at` in the score tables differs from the model's own has new scores. Compared
        month by month, not by the newest value of the table: the build area's catch-up (ADR 0094)
        copies only months with a newer load.
    Each such model that follows loads lists an index on `source_load_id` in its yml `indexes`, whose
    newest value reprocess_from_month() reads (docs/decisions/0109); not here, because a config()
    here would replace the indexes the yml lists for the dashboards.
    No meta.rebuilt_by_month: the pipeline's scoped tests (ADR 0021) follow loads, and a rescored
    month has no new load. Each build records the months it rebuilds instead
    (scored_month_rebuilds.sql), and the scoped tests read the months every build since the last
    publication rebuilt (docs/decisions/0110).

    The credit decision chain (docs/decisions/0104) chains these models: a model built from another
    one of them passes it as its only score relation (`score_month_column` names its month column;
    the upstream's `scored_at` is the newest of the ML outputs it joined, so a rescore reaches every
    model of the chain), and `revisions`, a relation of one row per month with `overrides_revision`
    (int_credit_override_months): the analysts' overrides are a third clock, with no load and no
    score. The model stores that month's value on its rows; a month whose value changed (an override
    added, or ended early) is rebuilt with every later one.
-#}
{% macro incremental_by_scored_month(
    score_relations, unique_key='as_of_month', follows_loads=true, score_month_column='as_of_month', revisions=none
) -%}
    {{- config(
        materialized='incremental',
        unique_key=unique_key,
        incremental_strategy='delete+insert',
        on_schema_change='fail',
    ) -}}
    {%- set month_ledger = ref('int_load_ledger_months') if follows_loads else none -%}
    {{- return(gridcredit.reprocess_from_scored_month(
        month_ledger, score_relations, unique_key, score_month_column, revisions,
    )) -}}
{%- endmacro %}

{#-
    The header of a model of the credit decision chain after int_credit_decision_inputs_joined
    (docs/decisions/0104): incremental by scored month, driven by `upstream` (the chain's model it
    reads, whose `scored_at` it carries on) and by the overrides in force (int_credit_override_months).
-#}
{% macro incremental_in_decision_chain(upstream) -%}
    {{- return(gridcredit.incremental_by_scored_month(
        [upstream],
        unique_key='month_start_date',
        score_month_column='month_start_date',
        revisions=ref('int_credit_override_months'),
    )) -}}
{%- endmacro %}

{% macro reprocess_from_scored_month(month_ledger, score_relations, month_column, score_month_column='as_of_month', revisions=none) -%}
    {{ return(adapter.dispatch('reprocess_from_scored_month', 'gridcredit')(
        month_ledger, score_relations, month_column, score_month_column, revisions,
    )) }}
{%- endmacro %}

{% macro default__reprocess_from_scored_month(month_ledger, score_relations, month_column, score_month_column, revisions) -%}
    {%- if not execute or not is_incremental() -%}
        {%- do gridcredit.record_scored_month_rebuild(month_column, 'all') -%}
        {{ return('all') }}
    {%- endif -%}
    {%- set from_loads = gridcredit.reprocess_from_month(month_ledger) if month_ledger else 'none' -%}
    {%- set query -%}
        with
        {% for relation in score_relations %}
        scored_{{ loop.index }} as (
            select {{ score_month_column }} as as_of_month, max(scored_at) as scored_at
            from {{ relation }}
            group by {{ score_month_column }}
        ),
        {% endfor %}
        {#- The months of the first relation (the model's driving table), each with the newest
            scored_at of the rows the model can join that month. -#}
        scored_months as (
            select
                scored_1.as_of_month,
                greatest(
                    {%- for relation in score_relations %}scored_{{ loop.index }}.scored_at{% if not loop.last %}, {% endif %}{% endfor -%}
                ) as scored_at
            from scored_1
            {%- for relation in score_relations[1:] %}
            left join scored_{{ loop.index + 1 }} on scored_1.as_of_month = scored_{{ loop.index + 1 }}.as_of_month
            {%- endfor %}
        ),

        {#- One read of the model's own rows for both comparisons. -#}
        built_months as (
            select
                {{ month_column }} as as_of_month,
                max(scored_at) as scored_at
                {%- if revisions %},
                max(overrides_revision) as overrides_revision
                {%- endif %}
            from {{ this }}
            group by {{ month_column }}
        )

        select
            (
                select {{ dbt.cast('min(scored_months.as_of_month)', dbt.type_string()) }}
                from scored_months
                left join built_months on scored_months.as_of_month = built_months.as_of_month
                where built_months.as_of_month is null or scored_months.scored_at <> built_months.scored_at
            ) as from_scores
            {%- if revisions %},
            {#- Months whose overrides in force differ from those the model's rows were built with (a
                month either side lacks has no overrides there: null on both sides is no change). #}
            (
                select {{ dbt.cast('min(coalesce(current_revisions.month_start_date, built_months.as_of_month))', dbt.type_string()) }}
                from {{ revisions }} as current_revisions
                full outer join built_months on current_revisions.month_start_date = built_months.as_of_month
                where current_revisions.overrides_revision is distinct from built_months.overrides_revision
            ) as from_revisions
            {%- endif %}
    {%- endset -%}
    {%- set answer = run_query(query).rows[0] -%}
    {%- set from_scores = answer[0] -%}
    {%- set from_revisions = answer[1] if revisions else none -%}
    {%- set firsts = [] -%}
    {%- for value in [from_loads, from_scores, from_revisions] -%}
        {%- if value and value != 'none' -%}
            {%- do firsts.append(value | string) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- set reprocess_from = firsts | min if firsts else 'none' -%}
    {%- do log(
        this.identifier ~ ": months newly scored or scored again from " ~ (from_scores or 'nowhere')
        ~ ("; overrides changed from " ~ (from_revisions or 'nowhere') if revisions else '') ~ "; rebuilding from "
        ~ (reprocess_from if firsts else 'nowhere (no new load or scores)'),
        info=true,
    ) -%}
    {%- do gridcredit.record_scored_month_rebuild(month_column, reprocess_from) -%}
    {{ return(reprocess_from) }}
{%- endmacro %}
