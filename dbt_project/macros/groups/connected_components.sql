{#-
    Connected components of an undirected graph: one row per node with component_id, the smallest
    node id reachable from it. `edges` is a relation with from_node_id and to_node_id holding both
    directions of every edge. A recursive CTE (ANSI `with recursive`); `union` (not `union all`)
    drops pairs already found, so cycles terminate. Cost grows with the square of the component
    size, fine for company groups (tens of members).
-#}
{% macro connected_components(edges) -%}
    {{ return(adapter.dispatch('connected_components', 'gridcredit')(edges)) }}
{%- endmacro %}

{% macro default__connected_components(edges) -%}
    with recursive

    reachable (node_id, reached_node_id) as (

        select distinct
            edges.from_node_id as node_id,
            edges.from_node_id as reached_node_id
        from {{ edges }} as edges

        union

        select
            reachable.node_id,
            edges.to_node_id as reached_node_id
        from reachable
        inner join {{ edges }} as edges
            on reachable.reached_node_id = edges.from_node_id

    )

    select
        reachable.node_id,
        min(reachable.reached_node_id) as component_id
    from reachable
    group by reachable.node_id
{%- endmacro %}
