-- Bills: one row per bill with what was paid against it (payment allocation, oldest due first, as
-- the books stand today), when it was fully paid and how late.
--   payment_status: cancelled | credit_note (negative bill) | written_off | paid_on_time |
--   paid_late | partially_paid | unpaid. A bill counts as paid when the unpaid rest is within the
--   arrears tolerance; paid_date is the date of the allocation that completed it.
--   days_late: paid bills, days from due date to paid date (0 if on time); unpaid or partly paid
--   bills past due, days from due date to the end of the data horizon; otherwise null.
with

bills as (

    select * from {{ ref('stg_billing__bills') }}

),

allocations as (

    select * from {{ ref('int_payments_allocated_to_bills') }}

),

months as (

    select * from {{ ref('int_load_ledger_months') }}

),

policy as (

    select * from {{ ref('config_arrears_policy') }}

),

horizon as (

    select max(months.month_end_date) as as_of_date
    from months

),

paid as (

    select
        allocations.bill_id,
        sum(allocations.allocated_amount) as paid_amount,
        max(cast(allocations.allocated_at as date)) as last_allocated_date
    from allocations
    where allocations.bill_id is not null
    group by allocations.bill_id

),

settled as (

    select
        bills.*,
        coalesce(paid.paid_amount, 0) as paid_amount,
        case
            when bills.bill_status = 'cancelled' or bills.bill_amount <= 0 then 0
            else bills.bill_amount - coalesce(paid.paid_amount, 0)
        end as outstanding_amount,
        case
            when
                bills.bill_status <> 'cancelled' and bills.bill_amount >= 0
                and bills.bill_amount - coalesce(paid.paid_amount, 0) <= policy.arrears_tolerance_amount
                -- a zero bill is settled when issued
                then coalesce(paid.last_allocated_date, bills.issue_date)
        end as paid_date,
        horizon.as_of_date
    from bills
    left join paid
        on bills.bill_id = paid.bill_id
    cross join policy
    cross join horizon

),

final as (

    select
        settled.bill_id,
        settled.customer_id,
        settled.billing_period_month,
        {{ gridcredit.month_start('settled.issue_date') }} as billed_month,
        settled.issue_date,
        settled.due_date,
        settled.billed_kwh,
        settled.bill_amount,
        settled.tariff_code,
        settled.bill_status,
        settled.paid_amount,
        settled.outstanding_amount,
        settled.paid_date,
        case
            when settled.paid_date is not null
                then greatest({{ gridcredit.days_between('settled.due_date', 'settled.paid_date') }}, 0)
            when settled.outstanding_amount > 0 and settled.due_date < settled.as_of_date
                then {{ gridcredit.days_between('settled.due_date', 'settled.as_of_date') }}
        end as days_late,
        case
            when settled.bill_status = 'cancelled' then 'cancelled'
            when settled.bill_amount < 0 then 'credit_note'
            when settled.bill_status = 'written_off' and settled.paid_date is null then 'written_off'
            when settled.paid_date is not null and settled.paid_date <= settled.due_date then 'paid_on_time'
            when settled.paid_date is not null then 'paid_late'
            when settled.paid_amount > 0 then 'partially_paid'
            else 'unpaid'
        end as payment_status
    from settled

)

select * from final
