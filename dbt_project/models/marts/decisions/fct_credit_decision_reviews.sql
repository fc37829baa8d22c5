-- The credit decisions that need a person (the risk decisions dashboard's lists): customer-months
-- whose recommended terms need an approval or changed materially since last month, with only the
-- columns those lists show. A narrow, small table (a fraction of fct_credit_decisions' rows and
-- columns), indexed latest month first then by credit limit, so a list reads ~its row limit.
with

decisions as (

    select * from {{ ref('fct_credit_decisions') }}

),

final as (

    select
        credit_decision_id,
        customer_id,
        month_start_date,
        region_code,
        industry_code,
        customer_type,
        value_tier,
        previous_decision_grade,
        decision_grade,
        credit_list_status,
        payment_cycle,
        credit_period_days,
        credit_limit_amount,
        deposit_amount,
        expected_loss_amount,
        approval_level,
        approver,
        is_approval_required,
        has_terms_change,
        change_summary,
        terms_reason
    from decisions
    where is_approval_required or has_terms_change

)

select * from final
