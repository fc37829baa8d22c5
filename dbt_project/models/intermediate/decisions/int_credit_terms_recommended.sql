-- The current credit policy applied to every customer-month: one row per open customer per scored
-- month with the matching rule, the recommended terms and amounts, the approval they need, exposure
-- at default and expected loss, and why. The rules live in the macro recommend_credit_terms, which
-- `gridcredit policy simulate` also compiles against an alternative policy table.
-- Incremental by scored month (docs/decisions/0104): rebuilt from the first month the list statuses
-- rebuilt (a new load, new scores or other overrides in force), whose markers it keeps.
{%- set reprocess_from = gridcredit.incremental_in_decision_chain(ref('int_credit_list_statuses_evaluated')) %}
{%- set rebuilt_months = gridcredit.reprocess_filter('month_start_date', reprocess_from) %}
with

recommended as (

    {{ gridcredit.recommend_credit_terms(
        statuses=ref('int_credit_list_statuses_evaluated'),
        overrides=ref('int_credit_overrides_in_force'),
        policy_terms=ref('credit_policy_terms'),
        payment_cycles=ref('credit_payment_cycles'),
        approval_levels=ref('credit_approval_levels'),
        parameters=ref('int_credit_policy_parameters_pivoted'),
        loss_assumptions=ref('expected_loss_assumptions'),
        where=rebuilt_months,
    ) | indent(4) }}

),

markers as (

    select
        statuses.customer_id,
        statuses.month_start_date,
        statuses.source_load_id,
        statuses.scored_at,
        statuses.overrides_revision
    from {{ ref('int_credit_list_statuses_evaluated') }} as statuses
    where {{ rebuilt_months }}

),

final as (

    select
        recommended.*,
        markers.source_load_id,
        markers.scored_at,
        markers.overrides_revision
    from recommended
    inner join markers
        on
            recommended.customer_id = markers.customer_id
            and recommended.month_start_date = markers.month_start_date

)

select * from final
