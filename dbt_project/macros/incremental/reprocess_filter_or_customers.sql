{#-
    reprocess_filter() widened to the rows of some customers whatever their month: for a model
    that counts a customer's earlier entries in a later month (its first month), a row belongs to a
    rebuilt month when its own month is rebuilt or its customer's later month is. Written as a
    filter on each scan, so that PostgreSQL drops the other rows before joins and aggregates
    (it does not push a filter on greatest(entry month, first month) through the join).
        {{ gridcredit.reprocess_filter_or_customers('bills.due_month', reprocess_from,
            'bills.customer_id', 'select customer_id from first_months where ...') }}
-#}
{% macro reprocess_filter_or_customers(month_column, reprocess_from, customer_column, customers_query) -%}
    {%- if reprocess_from in ('all', 'none') -%}
        {{ gridcredit.reprocess_filter(month_column, reprocess_from) }}
    {%- else -%}
        ({{ gridcredit.reprocess_filter(month_column, reprocess_from) }} or {{ customer_column }} in ({{ customers_query }}))
    {%- endif -%}
{%- endmacro %}
