{#-
    PostgreSQL form of dbt's built-in `relationships` test (dispatched through the project's
    `dispatch` search order; other engines keep dbt's join form). dbt joins every child row to the
    parent; when the parent is a staging view, PostgreSQL estimates one row after its latest-load
    filter and picks a nested loop: child rows x parent rows, quadratic in the data (seen on
    fct_customer_months.enterprise_id -> stg_registry__enterprises). EXCEPT reads each side once
    and hashes or sorts it: linear. It fails on every child value missing from the parent (each
    missing value once, not each row holding it).
-#}
{% macro postgres__test_relationships(model, column_name, to, field) %}
select {{ column_name }} as from_field
from {{ model }}
where {{ column_name }} is not null
except
select {{ field }} as to_field
from {{ to }}
{% endmacro %}
