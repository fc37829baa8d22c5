-- Links that put two enterprises in one customer group, both directions: control (either way),
-- a shared legal representative, a shared actual controller (pseudonyms compared, never clear IDs).
-- Shared-person links join each enterprise to the smallest enterprise id with the same person
-- (a star, not every pair), which connects the same companies with far fewer edges.
with

control as (

    select * from {{ ref('int_enterprise_control_resolved') }}

),

enterprises as (

    select * from {{ ref('stg_registry__enterprises') }}

),

shared_people as (

    select
        enterprises.enterprise_id,
        'shared_legal_representative' as link_type,
        min(enterprises.enterprise_id) over (partition by enterprises.legal_representative_key) as anchor_enterprise_id
    from enterprises
    where enterprises.legal_representative_key is not null

    union all

    select
        enterprises.enterprise_id,
        'shared_actual_controller' as link_type,
        min(enterprises.enterprise_id) over (partition by enterprises.actual_controller_key) as anchor_enterprise_id
    from enterprises
    where enterprises.actual_controller_key is not null

),

directed as (

    select
        control.controller_enterprise_id as from_node_id,
        control.controlled_enterprise_id as to_node_id,
        'control' as link_type
    from control

    union all

    select
        shared_people.enterprise_id as from_node_id,
        shared_people.anchor_enterprise_id as to_node_id,
        shared_people.link_type
    from shared_people
    where shared_people.enterprise_id <> shared_people.anchor_enterprise_id

),

final as (

    select
        directed.from_node_id,
        directed.to_node_id,
        directed.link_type
    from directed

    union

    select
        directed.to_node_id as from_node_id,
        directed.from_node_id as to_node_id,
        directed.link_type
    from directed

)

select * from final
