-- Customer groups: one row per group of linked enterprises (two or more members), with its
-- anchor (smallest member id), head (a controlling parent nobody controls, if any) and size.
with

members as (

    select * from {{ ref('bridge_customer_group_members') }}

),

customers as (

    select * from {{ ref('stg_billing__customers') }}

),

member_customers as (

    select
        members.customer_group_id,
        count(distinct customers.customer_id) as customer_account_count
    from members
    inner join customers
        on members.enterprise_id = customers.enterprise_id
    group by members.customer_group_id

),

final as (

    select
        members.customer_group_id,
        min(members.enterprise_id) as anchor_enterprise_id,
        min(case when members.link_type = 'controlling_parent' then members.enterprise_id end)
            as head_enterprise_id,
        count(*) as member_enterprise_count,
        cast(coalesce(max(member_customers.customer_account_count), 0) as bigint) as customer_account_count,
        sum(case when members.is_controlled then 1 else 0 end) as controlled_member_count,
        max(case when members.shares_legal_representative or members.shares_actual_controller then 1 else 0 end) = 1
            as has_shared_person_links
    from members
    left join member_customers
        on members.customer_group_id = member_customers.customer_group_id
    group by members.customer_group_id

)

select * from final
