-- Who controls whom in the company registry: one row per controlling and controlled enterprise
-- pair, with the round it was found in (0 = direct majority; see macros/groups/control_closure.sql).
-- The stake of each owner in each company is its latest delivered one (highest effective date).
with

ownership_links as (

    select * from {{ ref('stg_registry__ownership_links') }}

),

current_stakes as (

    select
        ranked.owner_enterprise_id,
        ranked.owned_enterprise_id,
        ranked.voting_stake_rate
    from (
        select
            ownership_links.*,
            row_number() over (
                partition by ownership_links.owner_enterprise_id, ownership_links.owned_enterprise_id
                order by ownership_links.effective_date desc
            ) as recency
        from ownership_links
    ) as ranked
    where ranked.recency = 1 and ranked.voting_stake_rate > 0

),

control as (

    {{ gridcredit.control_closure('current_stakes', var('group_control_max_depth')) }}

),

final as (

    select
        control.controller_enterprise_id,
        control.controlled_enterprise_id,
        control.control_depth
    from control

)

select * from final
