-- Customer group exposure: one row per customer group per month, summing the customer-months of
-- the accounts of its member enterprises (current membership). Limits and alerts come with the
-- decisions marts.
with

members as (

    select * from {{ ref('bridge_customer_group_members') }}

),

customer_months as (

    select * from {{ ref('fct_customer_months') }}

),

final as (

    select
        {{ gridcredit.surrogate_key(['members.customer_group_id', 'customer_months.month_start_date']) }}
            as customer_group_month_id,
        members.customer_group_id,
        customer_months.month_start_date,
        count(*) as customer_account_count,
        sum(case when customer_months.is_in_arrears then 1 else 0 end) as accounts_in_arrears_count,
        sum(customer_months.billed_amount) as billed_amount,
        sum(customer_months.collected_amount) as collected_amount,
        sum(customer_months.receivable_balance_amount) as receivable_balance_amount,
        sum(customer_months.arrears_amount) as arrears_amount,
        sum(customer_months.arrears_over_90_days_amount) as arrears_over_90_days_amount,
        max(customer_months.days_past_due) as max_days_past_due
    from members
    inner join customer_months
        on members.enterprise_id = customer_months.enterprise_id
    group by members.customer_group_id, customer_months.month_start_date

)

select * from final
