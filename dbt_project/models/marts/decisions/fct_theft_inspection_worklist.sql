-- The theft inspection list (用电检查清单) at the inspection capacity the ML step applies: one row per
-- customer on the list per decision month, ranked by suspicion, with the customer's segment, credit
-- standing and the reasons for suspicion.
with

decisions as (

    select * from {{ ref('fct_credit_decisions') }}

),

final as (

    select
        {{ gridcredit.surrogate_key(['decisions.customer_id', 'decisions.month_start_date']) }}
            as theft_inspection_worklist_id,
        decisions.month_start_date,
        cast(decisions.theft_suspicion_rank as integer) as suspicion_rank,
        decisions.customer_id,
        decisions.region_code,
        decisions.industry_code,
        decisions.customer_type,
        decisions.tariff_code,
        decisions.theft_suspicion_score,
        decisions.decision_grade,
        decisions.credit_list_status,
        decisions.outstanding_amount,
        decisions.theft_suspicion_reasons
    from decisions
    where decisions.is_on_inspection_list

)

select * from final
