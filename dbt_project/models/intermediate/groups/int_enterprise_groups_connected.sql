-- Group of every linked enterprise: one row per enterprise with at least one group link, with the
-- smallest enterprise id of its connected component (the group's anchor).
with

components as (

    {{ gridcredit.connected_components(ref('int_enterprise_links_unioned')) }}

),

final as (

    select
        components.node_id as enterprise_id,
        components.component_id as anchor_enterprise_id
    from components

)

select * from final
