-- Receivable bills (not cancelled, positive amount) in allocation order per customer (due date,
-- issue date, bill id) with the running amount billed, whether credits dated on or before the due
-- date covered the bill (paid on time, as known at the due date), and the month from which the
-- bill counts in each arrears measure (issued; overdue; more than 30, 60, 90 days overdue).
-- Leak-free: everything here is known at the end of the month it is attributed to.
--
-- Incremental by due month (docs/decisions/0108): a load touching months from m on delivers bills
-- issued from m on, and so (normally) due from m on, and credits dated from m on. Every bill due
-- before m keeps its row and precedes every bill due from m on in the allocation order; the rebuilt
-- bills carry the customer's amounts billed due before m and credited before m into their running
-- totals. A bill issued from m on but due before m moves the rebuild back to its due month.
{%- set reprocess_from = gridcredit.incremental_by_month(unique_key='due_month') %}
{%- set rebuilding_part = reprocess_from not in ('all', 'none') %}
{%- if rebuilding_part %}
    {%- set due_earlier_query %}
        select {{ dbt.cast('min(' ~ gridcredit.month_start('bills.due_date') ~ ')', dbt.type_string()) }}
        from {{ ref('stg_billing__bills') }} as bills
        where bills.issue_date >= cast('{{ reprocess_from }}' as date) and bills.due_date < cast('{{ reprocess_from }}' as date)
    {%- endset %}
    {%- set due_earlier = run_query(due_earlier_query).columns[0].values()[0] %}
    {%- if due_earlier %}
        {%- do log(this.identifier ~ ": a bill issued from " ~ reprocess_from ~ " is due earlier: reprocessing from "
            ~ due_earlier, info=true) %}
        {%- set reprocess_from = due_earlier %}
    {%- endif %}
{%- endif %}
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

ledger as (

    select * from {{ ref('int_load_ledger_months') }}

),

ledger_horizon as (

    select
        min(ledger.month_start_date) as first_month,
        max(ledger.month_start_date) as last_month
    from ledger

),

receivable_bills as (

    select bills.*
    from bills
    where bills.bill_status <> 'cancelled' and bills.bill_amount > 0

),

{% if rebuilding_part -%}
-- what each customer had billed (due before the rebuilt months) and credited (dated before them)
carried as (

    select
        carried_amounts.customer_id,
        sum(carried_amounts.billed_amount) as billed_amount,
        sum(carried_amounts.credited_amount) as credited_amount
    from (
        select
            receivable_bills.customer_id,
            receivable_bills.bill_amount as billed_amount,
            0 as credited_amount
        from receivable_bills
        where not ({{ gridcredit.reprocess_filter('receivable_bills.due_date', reprocess_from) }})

        union all

        select
            credits.customer_id,
            0 as billed_amount,
            credits.credit_amount as credited_amount
        from credits
        where not ({{ gridcredit.reprocess_filter('credits.credit_date', reprocess_from) }})
    ) as carried_amounts
    group by carried_amounts.customer_id

),
{%- endif %}

receivables as (

    select
        receivable_bills.customer_id,
        receivable_bills.bill_id,
        receivable_bills.issue_date,
        receivable_bills.due_date,
        receivable_bills.bill_amount,
        receivable_bills.bill_status,
        {{ 'coalesce(carried.billed_amount, 0) + ' if rebuilding_part }}sum(receivable_bills.bill_amount) over (
            partition by receivable_bills.customer_id
            order by receivable_bills.due_date, receivable_bills.issue_date, receivable_bills.bill_id
            rows between unbounded preceding and current row
        ) as billed_through_amount,
        {{ 'coalesce(carried.credited_amount, 0)' if rebuilding_part else '0' }} as credited_before_rebuilt_months_amount
    from receivable_bills
    {%- if rebuilding_part %}
    left join carried
        on receivable_bills.customer_id = carried.customer_id
    {%- endif %}
    where {{ gridcredit.reprocess_filter('receivable_bills.due_date', reprocess_from) }}

),

-- credits and bill due dates on one time line: a bill's running credit is what arrived by the end of
-- its due date (credits of the due date itself count)
timeline as (

    select
        credits.customer_id,
        credits.credit_date as event_date,
        0 as event_order,
        cast(null as {{ dbt.type_string() }}) as bill_id,
        credits.credit_amount,
        0 as credited_before_amount
    from credits
    where {{ gridcredit.reprocess_filter('credits.credit_date', reprocess_from) }}

    union all

    select
        receivables.customer_id,
        receivables.due_date as event_date,
        1 as event_order,
        receivables.bill_id,
        0 as credit_amount,
        receivables.credited_before_rebuilt_months_amount as credited_before_amount
    from receivables

),

credited_by_due_date as (

    select
        timeline.bill_id,
        timeline.credited_before_amount + sum(timeline.credit_amount) over (
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
        {{ gridcredit.month_start('receivables.due_date') }} as due_month,
        -- the newest load that can change the bill's row: one touching its due month or earlier
        ledger.source_load_id
    from receivables
    inner join credited_by_due_date
        on receivables.bill_id = credited_by_due_date.bill_id
    cross join policy
    cross join ledger_horizon
    inner join ledger
        on
            ledger.month_start_date = greatest(
                least({{ gridcredit.month_start('receivables.due_date') }}, ledger_horizon.last_month),
                ledger_horizon.first_month
            )

)

select * from final
