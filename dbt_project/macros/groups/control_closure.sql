{#-
    Control pairs from voting stakes: (controller, controlled, control_depth). An enterprise controls
    another when it holds more than 50% of its votes directly or through companies it controls (their
    stakes added to its own). Computed as a fixpoint unrolled max_depth rounds: round k adds the
    stakes held by everything controlled in round k-1. Each round only adds pairs, so chains are
    followed level by level and cross-holdings terminate; control_depth is the round a pair first
    appeared (0 = direct majority). PostgreSQL allows no aggregate in a recursive CTE's recursive
    term, so the rounds are written out (portable SQL, no `with recursive`).

    stakes: relation or CTE name with owner_enterprise_id, owned_enterprise_id, voting_stake_rate.
-#}
{% macro control_closure(stakes, max_depth) -%}
    {{ return(adapter.dispatch('control_closure', 'gridcredit')(stakes, max_depth)) }}
{%- endmacro %}

{% macro default__control_closure(stakes, max_depth) -%}
    with

    control_round_0 as (

        select
            stakes.owner_enterprise_id as controller_enterprise_id,
            stakes.owned_enterprise_id as controlled_enterprise_id
        from {{ stakes }} as stakes
        where stakes.voting_stake_rate > 0.5 and stakes.owner_enterprise_id <> stakes.owned_enterprise_id

    ),

    {%- for round in range(1, max_depth + 1) %}

    control_round_{{ round }} as (

        select
            holders.controller_enterprise_id,
            stakes.owned_enterprise_id as controlled_enterprise_id
        from (
            select
                stakes.owner_enterprise_id as controller_enterprise_id,
                stakes.owner_enterprise_id as holder_enterprise_id
            from {{ stakes }} as stakes
            union
            select
                control_round_{{ round - 1 }}.controller_enterprise_id,
                control_round_{{ round - 1 }}.controlled_enterprise_id as holder_enterprise_id
            from control_round_{{ round - 1 }}
        ) as holders
        inner join {{ stakes }} as stakes
            on holders.holder_enterprise_id = stakes.owner_enterprise_id
        where holders.controller_enterprise_id <> stakes.owned_enterprise_id
        group by holders.controller_enterprise_id, stakes.owned_enterprise_id
        having sum(stakes.voting_stake_rate) > 0.5

    ),

    {%- endfor %}

    all_rounds as (

        {%- for round in range(0, max_depth + 1) %}
        select
            control_round_{{ round }}.controller_enterprise_id,
            control_round_{{ round }}.controlled_enterprise_id,
            {{ round }} as control_depth
        from control_round_{{ round }}
        {%- if not loop.last %}
        union all
        {%- endif %}
        {%- endfor %}

    )

    select
        all_rounds.controller_enterprise_id,
        all_rounds.controlled_enterprise_id,
        min(all_rounds.control_depth) as control_depth
    from all_rounds
    group by all_rounds.controller_enterprise_id, all_rounds.controlled_enterprise_id
{%- endmacro %}
