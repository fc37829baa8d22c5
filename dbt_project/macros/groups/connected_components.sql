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

{#-
    Spark 4.0 has no recursive CTE. Reachability by path doubling instead: round k joins the pairs
    found so far with themselves, so after `rounds` rounds every node reached within 2^rounds hops
    is found (10 rounds: 1,024 hops, far beyond any company group's diameter).
-#}
{% macro spark__connected_components(edges, rounds=10) -%}
    with

    reachable_0 as (

        select distinct
            edges.from_node_id as node_id,
            edges.to_node_id as reached_node_id
        from {{ edges }} as edges

        union

        select distinct
            edges.from_node_id as node_id,
            edges.from_node_id as reached_node_id
        from {{ edges }} as edges

    ),
    {%- for round in range(1, rounds + 1) %}

    reachable_{{ round }} as (

        select distinct
            first_leg.node_id,
            second_leg.reached_node_id
        from reachable_{{ round - 1 }} as first_leg
        inner join reachable_{{ round - 1 }} as second_leg
            on first_leg.reached_node_id = second_leg.node_id

    ){{ ',' if not loop.last }}
    {%- endfor %}

    select
        reachable.node_id,
        min(reachable.reached_node_id) as component_id
    from reachable_{{ rounds }} as reachable
    group by reachable.node_id
{%- endmacro %}
