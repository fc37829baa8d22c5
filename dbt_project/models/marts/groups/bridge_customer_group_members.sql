-- Customer group members: one row per enterprise in a customer group (groups have two or more
-- members), with how it is linked: controlled_subsidiary (controlled by another member, directly
-- or indirectly), controlling_parent (controls members, controlled by none), or, without control,
-- shared_legal_representative / shared_actual_controller. The flags record every link kind the
-- member has.
with

groups as (

    select * from {{ ref('int_enterprise_groups_connected') }}

),

links as (

    select * from {{ ref('int_enterprise_links_unioned') }}

),

control as (

    select * from {{ ref('int_enterprise_control_resolved') }}

),

link_flags as (

    select
        links.from_node_id as enterprise_id,
        max(case when links.link_type = 'shared_legal_representative' then 1 else 0 end)
            as shares_legal_representative,
        max(case when links.link_type = 'shared_actual_controller' then 1 else 0 end)
            as shares_actual_controller
    from links
    group by links.from_node_id

),

controlled as (

    -- the ultimate controller: a controller of the member that nobody controls (smallest id if several)
    select
        control.controlled_enterprise_id as enterprise_id,
        min(
            case
                when not exists (
                        select 1
                        from control as upper_control
                        where upper_control.controlled_enterprise_id = control.controller_enterprise_id
                    ) then control.controller_enterprise_id
            end
        ) as ultimate_controller_enterprise_id,
        min(control.controller_enterprise_id) as any_controller_enterprise_id
    from control
    group by control.controlled_enterprise_id

),

controlling as (

    select distinct control.controller_enterprise_id as enterprise_id
    from control

),

final as (

    select
        {{ gridcredit.surrogate_key(['groups.anchor_enterprise_id']) }} as customer_group_id,
        groups.enterprise_id,
        case
            when controlled.enterprise_id is not null then 'controlled_subsidiary'
            when controlling.enterprise_id is not null then 'controlling_parent'
            when link_flags.shares_legal_representative = 1 then 'shared_legal_representative'
            else 'shared_actual_controller'
        end as link_type,
        coalesce(controlled.ultimate_controller_enterprise_id, controlled.any_controller_enterprise_id)
            as controlling_enterprise_id,
        controlled.enterprise_id is not null as is_controlled,
        controlling.enterprise_id is not null as controls_members,
        link_flags.shares_legal_representative = 1 as shares_legal_representative,
        link_flags.shares_actual_controller = 1 as shares_actual_controller
    from groups
    inner join link_flags
        on groups.enterprise_id = link_flags.enterprise_id
    left join controlled
        on groups.enterprise_id = controlled.enterprise_id
    left join controlling
        on groups.enterprise_id = controlling.enterprise_id

)

select * from final
