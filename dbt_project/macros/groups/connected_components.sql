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
    Spark 4.0 has no recursive CTE. Label propagation instead: every node starts with its own id and
    takes, each round, the smallest label among itself and its neighbours; after as many rounds as
    the longest shortest path in a component, every node holds the component's smallest node id.
    Each round reads the previous one once, so the plan grows linearly with
    var('group_component_max_hops'). One more round must change nothing; otherwise the query fails
    (assert_true) rather than split a group silently.
-#}
{% macro spark__connected_components(edges) -%}
    {%- set rounds = var('group_component_max_hops') | int -%}
    with

    nodes as (

        select distinct edges.from_node_id as node_id
        from {{ edges }} as edges

    ),

    neighbours as (

        select
            edges.from_node_id as node_id,
            edges.to_node_id as neighbour_id
        from {{ edges }} as edges

        union

        select
            nodes.node_id,
            nodes.node_id as neighbour_id
        from nodes

    ),

    labels_0 as (

        select
            nodes.node_id,
            nodes.node_id as component_id
        from nodes

    ),
    {%- for round in range(1, rounds + 2) %}

    labels_{{ round }} as (

        select
            neighbours.node_id,
            min(previous.component_id) as component_id
        from neighbours
        inner join labels_{{ round - 1 }} as previous
            on neighbours.neighbour_id = previous.node_id
        group by neighbours.node_id

    ),
    {%- endfor %}

    settled as (

        select
            labels.node_id,
            labels.component_id
        from labels_{{ rounds }} as labels
        inner join labels_{{ rounds + 1 }} as one_more
            on labels.node_id = one_more.node_id
        where assert_true(
            labels.component_id = one_more.component_id,
            'connected_components: a component is wider than var group_component_max_hops ({{ rounds }})'
        ) is null

    )

    select
        settled.node_id,
        settled.component_id
    from settled
{%- endmacro %}
