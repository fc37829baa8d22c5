-- Top arrears accounts: one row per month per rank, the var('top_arrears_accounts') customers with
-- the largest arrears at the month end (ties broken by days past due, then customer id).
with

customer_months as (

    select * from {{ ref('fct_customer_months') }}

),

ranked as (

    select
        customer_months.month_start_date,
        customer_months.customer_id,
        customer_months.customer_month_id,
        customer_months.region_code,
        customer_months.industry_code,
        customer_months.customer_type,
        customer_months.enterprise_id,
        customer_months.arrears_amount,
        customer_months.arrears_over_90_days_amount,
        customer_months.days_past_due,
        customer_months.dunning_notice_count,
        customer_months.disconnection_count,
        row_number() over (
            partition by customer_months.month_start_date
            order by
                customer_months.arrears_amount desc,
                customer_months.days_past_due desc,
                customer_months.customer_id asc
        ) as arrears_rank
    from customer_months
    where customer_months.is_in_arrears

),

final as (

    select
        ranked.customer_month_id,
        ranked.month_start_date,
        cast(ranked.arrears_rank as integer) as arrears_rank,
        ranked.customer_id,
        ranked.region_code,
        ranked.industry_code,
        ranked.customer_type,
        ranked.enterprise_id,
        ranked.arrears_amount,
        ranked.arrears_over_90_days_amount,
        ranked.days_past_due,
        ranked.dunning_notice_count,
        ranked.disconnection_count
    from ranked
    where ranked.arrears_rank <= {{ var('top_arrears_accounts') }}

)

select * from final
