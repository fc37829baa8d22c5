-- The collections worklist (催费清单): one row per customer per decision month with something at
-- risk, ranked by priority = probability of arrears next month x amount at risk (what the customer
-- owes plus next month's forecast bill not prepaid, less the prepaid and credit balance held). The
-- top `collections_worklist_size` rows of a month are the list the collections team works.
with

decisions as (

    select * from {{ ref('fct_credit_decisions') }}

),

parameters as (

    select * from {{ ref('int_credit_policy_parameters_pivoted') }}

),

at_risk as (

    select
        decisions.*,
        greatest(
            decisions.outstanding_amount
            + coalesce(decisions.forecast_bill_amount_month_1, decisions.expected_monthly_bill_amount)
            * (1 - decisions.prepayment_rate)
            - decisions.advance_balance_amount,
            0
        ) as amount_at_risk
    from decisions

),

ranked as (

    select
        at_risk.*,
        coalesce(at_risk.arrears_probability, 0) * at_risk.amount_at_risk as priority_amount,
        row_number() over (
            partition by at_risk.month_start_date
            order by coalesce(at_risk.arrears_probability, 0) * at_risk.amount_at_risk desc, at_risk.customer_id
        ) as priority_rank
    from at_risk
    where at_risk.amount_at_risk > 0

),

final as (

    select
        {{ gridcredit.surrogate_key(['ranked.customer_id', 'ranked.month_start_date']) }} as collections_worklist_id,
        ranked.month_start_date,
        cast(ranked.priority_rank as integer) as priority_rank,
        ranked.priority_rank <= parameters.collections_worklist_size as is_on_worklist,
        ranked.customer_id,
        ranked.region_code,
        ranked.industry_code,
        ranked.customer_type,
        ranked.payment_method,
        ranked.decision_grade,
        ranked.warning_level,
        ranked.arrears_probability,
        ranked.outstanding_amount,
        ranked.arrears_amount,
        ranked.days_past_due,
        cast(ranked.amount_at_risk as numeric(18, 2)) as amount_at_risk_amount,
        cast(ranked.priority_amount as numeric(18, 2)) as priority_amount,
        case
            when ranked.days_past_due > 60 then 'disconnection notice (停电催费通知)'
            when ranked.days_past_due > 30 or ranked.warning_level = 'red' then 'dunning notice and a call'
            when ranked.days_past_due > 0 then 'payment reminder'
            when ranked.warning_level in ('orange', 'yellow') then 'reminder before the due date'
            else 'monitor'
        end as suggested_action,
        ranked.warning_reasons
    from ranked
    cross join parameters

)

select * from final
