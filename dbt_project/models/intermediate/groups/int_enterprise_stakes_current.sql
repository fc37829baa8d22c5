-- The voting stake each owner holds in each company now: its latest delivered one (highest effective
-- date), when above zero. One row per owner and owned enterprise.
-- A table of its own, not a CTE of int_enterprise_control_resolved: the control rounds read it many
-- times, and only a table gives the planner its row count (docs/decisions/0105).
with

ownership_links as (

    select * from {{ ref('stg_registry__ownership_links') }}

),

ranked as (

    select
        ownership_links.owner_enterprise_id,
        ownership_links.owned_enterprise_id,
        ownership_links.voting_stake_rate,
        row_number() over (
            partition by ownership_links.owner_enterprise_id, ownership_links.owned_enterprise_id
            order by ownership_links.effective_date desc
        ) as recency
    from ownership_links

),

final as (

    select
        ranked.owner_enterprise_id,
        ranked.owned_enterprise_id,
        ranked.voting_stake_rate
    from ranked
    where ranked.recency = 1 and ranked.voting_stake_rate > 0

)

select * from final
