-- One fingerprint per decision month of the analysts' overrides in force at its end (customer and
-- override summary: ids, terms, author, last day, reason). The decision models incremental by scored
-- month store it on their rows and rebuild a month whose fingerprint changed: an override added, or
-- ended early, has no load and no score to mark it (docs/decisions/0104). One row per month with at
-- least one override in force.
with

overrides as (

    select * from {{ ref('int_credit_overrides_in_force') }}

),

final as (

    select
        overrides.month_start_date,
        {{ dbt.hash(dbt.listagg(
            "overrides.customer_id || ': ' || overrides.override_summary",
            "'; '",
            'order by overrides.customer_id',
        )) }} as overrides_revision
    from overrides
    group by overrides.month_start_date

)

select * from final
