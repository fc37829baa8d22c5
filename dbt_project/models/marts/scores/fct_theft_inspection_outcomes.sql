-- Past inspections against the theft suspicion score: one row per inspection with the score the
-- customer had at the end of the month before (the list that month's inspectors could use), its
-- band and the outcome, so the dashboard shows the hit rate of inspections by score band.
with

inspections as (

    select * from {{ ref('stg_inspection__inspections') }}

),

theft_suspicion as (

    select * from {{ ref('stg_ml__theft_suspicion') }}

),

customer_months as (

    select * from {{ ref('fct_customer_months') }}

),

scored_inspections as (

    select
        inspections.inspection_id,
        inspections.customer_id,
        inspections.inspection_date,
        {{ gridcredit.month_start('inspections.inspection_date') }} as inspection_month,
        inspections.inspection_trigger,
        inspections.inspection_outcome,
        inspections.recovered_amount,
        theft_suspicion.as_of_month as score_as_of_month,
        theft_suspicion.suspicion_score,
        theft_suspicion.suspicion_rank,
        theft_suspicion.is_on_inspection_list,
        theft_suspicion.is_in_training_window
    from inspections
    inner join theft_suspicion
        on
            inspections.customer_id = theft_suspicion.customer_id
            and theft_suspicion.as_of_month
            = {{ gridcredit.add_months(gridcredit.month_start('inspections.inspection_date'), -1) }}

),

final as (

    select
        scored.inspection_id,
        scored.customer_id,
        scored.inspection_date,
        scored.inspection_month,
        scored.score_as_of_month,
        customer_months.region_code,
        customer_months.industry_code,
        customer_months.customer_type,
        scored.inspection_trigger,
        scored.inspection_outcome,
        scored.inspection_outcome = 'theft_confirmed' as is_theft_confirmed,
        scored.inspection_outcome in ('theft_confirmed', 'violation') as is_irregularity_found,
        scored.recovered_amount,
        scored.suspicion_score,
        -- Tenths of the 0-1 score (a percentile blend, so roughly deciles of the customers).
        case
            when scored.suspicion_score >= 0.9 then '0.9-1.0'
            when scored.suspicion_score >= 0.8 then '0.8-0.9'
            when scored.suspicion_score >= 0.7 then '0.7-0.8'
            when scored.suspicion_score >= 0.6 then '0.6-0.7'
            when scored.suspicion_score >= 0.5 then '0.5-0.6'
            when scored.suspicion_score >= 0.4 then '0.4-0.5'
            when scored.suspicion_score >= 0.3 then '0.3-0.4'
            when scored.suspicion_score >= 0.2 then '0.2-0.3'
            when scored.suspicion_score >= 0.1 then '0.1-0.2'
            else '0.0-0.1'
        end as suspicion_score_band,
        scored.suspicion_rank,
        scored.is_on_inspection_list,
        scored.is_in_training_window
    from scored_inspections as scored
    left join customer_months
        on
            scored.customer_id = customer_months.customer_id
            and scored.score_as_of_month = customer_months.month_start_date

)

select * from final
