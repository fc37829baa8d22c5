-- The registered capital of each enterprise in the registry, for the customer-month's scale
-- indicator. One row per enterprise.
-- A table of its own rather than a read of the staging view (docs/decisions/0105): the customer-month
-- joins it to one month of accounts, and PostgreSQL, estimating the view's ranking of loads at 67 rows
-- (13,398 at 100k), joined them by nested loop: 1.5 billion comparisons, 54-130 s a month. Only the
-- columns the join needs: no personal data is kept here (a purge changes the staging view at once).
with

enterprises as (

    select * from {{ ref('stg_registry__enterprises') }}

),

final as (

    select
        enterprises.enterprise_id,
        enterprises.registered_capital_amount
    from enterprises

)

select * from final
