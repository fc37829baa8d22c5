-- Assert that, customer by customer, the arrears of the latest month end (running totals in
-- fct_customer_months) equal the outstanding amount of the bills past due by then (payment
-- allocation in fct_bills): two independent methods, one answer.
with

customer_months as (

    select * from {{ ref('fct_customer_months') }}

),

bills as (

    select * from {{ ref('fct_bills') }}

),

latest as (

    select
        customer_months.customer_id,
        customer_months.month_end_date,
        customer_months.arrears_amount
    from customer_months
    where customer_months.month_start_date = (select max(all_months.month_start_date) from customer_months as all_months)

),

overdue as (

    select
        latest.customer_id,
        coalesce(sum(bills.outstanding_amount), 0) as outstanding_amount
    from latest
    left join bills
        on
            latest.customer_id = bills.customer_id
            and latest.month_end_date > bills.due_date
    group by latest.customer_id

)

select
    latest.customer_id,
    latest.arrears_amount,
    overdue.outstanding_amount
from latest
inner join overdue
    on latest.customer_id = overdue.customer_id
where latest.arrears_amount <> overdue.outstanding_amount
