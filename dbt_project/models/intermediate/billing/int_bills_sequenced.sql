-- Receivable bills (not cancelled, positive amount) in allocation order per customer (due date,
-- issue date, bill id) with the running amount billed, whether credits dated on or before the due
-- date covered the bill (paid on time, as known at the due date), and the month from which the
-- bill counts in each arrears measure (issued; overdue; more than 30, 60, 90 days overdue).
-- Leak-free: everything here is known at the end of the month it is attributed to.
with

bills as (

    select * from {{ ref('stg_billing__bills') }}

),

credits as (

    select * from {{ ref('int_credits_unioned') }}

),

policy as (

    select * from {{ ref('config_arrears_policy') }}

),

receivables as (

    select
        bills.customer_id,
        bills.bill_id,
        bills.issue_date,
        bills.due_date,
        bills.bill_amount,
        bills.bill_status,
        sum(bills.bill_amount) over (
            partition by bills.customer_id
            order by bills.due_date, bills.issue_date, bills.bill_id
            rows between unbounded preceding and current row
        ) as billed_through_amount
    from bills
    where bills.bill_status <> 'cancelled' and bills.bill_amount > 0

),

-- credits and bill due dates on one time line: a bill's running credit is what arrived by the end of
-- its due date (credits of the due date itself count)
timeline as (

    select
        credits.customer_id,
        credits.credit_date as event_date,
        0 as event_order,
        cast(null as {{ dbt.type_string() }}) as bill_id,
        credits.credit_amount
    from credits

    union all

    select
        receivables.customer_id,
        receivables.due_date as event_date,
        1 as event_order,
        receivables.bill_id,
        0 as credit_amount
    from receivables

),

credited_by_due_date as (

    select
        timeline.bill_id,
        sum(timeline.credit_amount) over (
            partition by timeline.customer_id
            order by timeline.event_date, timeline.event_order, timeline.bill_id
            rows between unbounded preceding and current row
        ) as credited_by_due_date_amount
    from timeline

),

final as (

    select
        receivables.customer_id,
        receivables.bill_id,
        receivables.issue_date,
        receivables.due_date,
        receivables.bill_amount,
        receivables.bill_status,
        receivables.billed_through_amount - receivables.bill_amount as billed_before_amount,
        receivables.billed_through_amount,
        credited_by_due_date.credited_by_due_date_amount,
        credited_by_due_date.credited_by_due_date_amount + policy.arrears_tolerance_amount
        >= receivables.billed_through_amount as is_paid_by_due_date,
        {%- for days in [0, 30, 60, 90] %}
        greatest(
            {{ gridcredit.month_start('receivables.issue_date') }},
            {{ gridcredit.month_start(gridcredit.add_days('receivables.due_date', days + 1)) }}
        ) as overdue_over_{{ days }}_days_month,
        {%- endfor %}
        {{ gridcredit.month_start('receivables.issue_date') }} as billed_month,
        {{ gridcredit.month_start('receivables.due_date') }} as due_month
    from receivables
    inner join credited_by_due_date
        on receivables.bill_id = credited_by_due_date.bill_id
    cross join policy

)

select * from final
