-- Who controls whom in the company registry: one row per controlling and controlled enterprise
-- pair, with the round it was found in (0 = direct majority; see macros/groups/control_closure.sql),
-- from the current stakes (int_enterprise_stakes_current).
with

control as (

    {{ gridcredit.control_closure(ref('int_enterprise_stakes_current'), var('group_control_max_depth')) }}

),

final as (

    select
        control.controller_enterprise_id,
        control.controlled_enterprise_id,
        control.control_depth
    from control

)

select * from final
