{#-
    Fails when the model's row count (optionally filtered) differs from another relation's
    (optionally filtered): e.g. one customer-month row per customer per month of the spine.
-#}
{% test equal_row_count_where(model, compare_model, where_clause='1 = 1', compare_where_clause='1 = 1') %}
    {{ return(adapter.dispatch('test_equal_row_count_where', 'gridcredit')(model, compare_model, where_clause, compare_where_clause)) }}
{% endtest %}

{% macro default__test_equal_row_count_where(model, compare_model, where_clause, compare_where_clause) %}
with model_rows as (
    select count(*) as row_count from {{ model }} where {{ where_clause }}
),

compare_rows as (
    select count(*) as row_count from {{ compare_model }} where {{ compare_where_clause }}
)

select
    model_rows.row_count as model_row_count,
    compare_rows.row_count as compare_row_count
from model_rows
cross join compare_rows
where model_rows.row_count <> compare_rows.row_count
{% endmacro %}
