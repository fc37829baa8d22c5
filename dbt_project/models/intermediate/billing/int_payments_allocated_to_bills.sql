-- Payments allocated to bills, oldest due first, as the books stand today.
--
-- Each customer's receivable bills (issued, written off; positive amount; cancelled bills owe
-- nothing) are laid end to end in allocation order (due date, issue date, bill id), so bill i covers
-- the amount range [billed before i, billed through i). Credits are laid end to end in the order they
-- arrived: payments net of their reversals (a fully reversed payment drops out, a partly reversed
-- one keeps the rest) and credit notes (negative bills). A credit pays the bills whose ranges its own
-- range allocated_segments, by the length of the overlap. This one rule gives every case:
--   partial payment:   a credit shorter than the bill covers part of it;
--   over-payment:      the credit's range runs past the last bill; the rest shows as unapplied credit
--                      (bill_id null) until a later bill's range picks it up (carried forward);
--   advance payment:   a credit that arrived before the bill was issued pays it at its issue date;
--   reversal:          the reversed payment's range shrinks or vanishes and later credits move up.
-- allocated_at is when the money met the bill: the later of credit time and bill issue date.
-- Segments are built from the sorted break points of both sequences (linear in rows per customer,
-- no bills x payments join).
--
-- Incremental by amount position (docs/decisions/0112): the pre-hook takes out each changed
-- customer's rows from the position where a load can change them (allocation_tail.sql); this model
-- then allocates only that tail again, from the bills' positions in int_bills_sequenced and the
-- cut rows' credit positions. Rows carry their position range and the newest load of their month.
-- On Spark a table, rebuilt whole.
{{
    config(
        materialized=('table' if target.type == 'spark' else 'incremental'),
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook=["{{ gridcredit.allocation_tail_pre_hook() }}"],
        indexes=[{'columns': ['source_load_id']}],
    )
}}
-- depends_on: {{ ref('int_bills_sequenced') }} {{ ref('int_load_ledger_months') }} {{ ref('int_payment_reversals_reaching_back') }}
{%- set tail_only = is_incremental() %}
with

bills as (

    select * from {{ ref('stg_billing__bills') }}

),

payments as (

    select * from {{ ref('stg_billing__payments') }}

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

{% if tail_only -%}
-- the customers whose tail is allocated again, from the cut on (allocation_tail.sql's pre-hook)
cuts as (

    select * from allocation_cuts

),

cut_rows as (

    select * from allocation_tail

),

bills_sequenced as (

    select * from {{ ref('int_bills_sequenced') }}

),

-- bill_key: the bill's end position, increasing in allocation order (amounts are positive)
receivables as (

    select
        bills_sequenced.customer_id,
        bills_sequenced.bill_id,
        bills_sequenced.issue_date,
        bills_sequenced.due_date,
        bills_sequenced.billed_through_amount as bill_key,
        greatest(bills_sequenced.billed_before_amount, cuts.cut_amount) as range_start
    from bills_sequenced
    inner join cuts
        on bills_sequenced.customer_id = cuts.customer_id
    where bills_sequenced.billed_through_amount > cuts.cut_amount

),

bill_totals as (

    select
        bills_sequenced.customer_id,
        max(bills_sequenced.billed_through_amount) as billed_amount
    from bills_sequenced
    inner join cuts
        on bills_sequenced.customer_id = cuts.customer_id
    group by bills_sequenced.customer_id

),

-- the credits dated from the rebuilt months on, of the cut customers only
credit_payments as (

    select payments.*
    from payments
    inner join cuts
        on payments.customer_id = cuts.customer_id
    where payments.paid_at >= cuts.credits_from

),

credit_note_bills as (

    select bills.*
    from bills
    inner join cuts
        on bills.customer_id = cuts.customer_id
    where cast(bills.issue_date as timestamp) >= cuts.credits_from

),

{%- else %}
-- bill_key: the bill's end position, increasing in allocation order (amounts are positive)
receivables as (

    select
        bills.customer_id,
        bills.bill_id,
        bills.issue_date,
        bills.due_date,
        sum(bills.bill_amount) over (
            partition by bills.customer_id
            order by bills.due_date, bills.issue_date, bills.bill_id
            rows between unbounded preceding and current row
        ) as bill_key,
        sum(bills.bill_amount) over (
            partition by bills.customer_id
            order by bills.due_date, bills.issue_date, bills.bill_id
            rows between unbounded preceding and current row
        ) - bills.bill_amount as range_start
    from bills
    where bills.bill_status <> 'cancelled' and bills.bill_amount > 0

),

bill_totals as (

    select
        receivables.customer_id,
        max(receivables.bill_key) as billed_amount
    from receivables
    group by receivables.customer_id

),

credit_payments as (

    select * from payments

),

credit_note_bills as (

    select * from bills

),

{%- endif %}

reversals as (

    select
        payments.customer_id,
        payments.reverses_payment_id as payment_id,
        sum(payments.payment_amount) as reversed_amount
    from payments
    where payments.reverses_payment_id is not null
    group by payments.customer_id, payments.reverses_payment_id

),

-- payments net of their reversals (all of them: a reversal may come later than its payment's
-- month) and credit notes (negative bills; cancelled ones owe nothing)
credits as (

    select
        credit_payments.customer_id,
        credit_payments.payment_id as credit_id,
        'payment' as credit_kind,
        credit_payments.paid_at as credited_at,
        credit_payments.payment_amount + coalesce(reversals.reversed_amount, 0) as credit_amount
    from credit_payments
    left join reversals
        on
            credit_payments.customer_id = reversals.customer_id
            and credit_payments.payment_id = reversals.payment_id
    where credit_payments.reverses_payment_id is null

    union all

    select
        credit_note_bills.customer_id,
        credit_note_bills.bill_id as credit_id,
        'credit_note' as credit_kind,
        cast(credit_note_bills.issue_date as timestamp) as credited_at,
        -credit_note_bills.bill_amount as credit_amount
    from credit_note_bills
    where credit_note_bills.bill_status <> 'cancelled' and credit_note_bills.bill_amount < 0

),

{% if tail_only -%}
-- credit_key: the credit's end position. Credits dated before the rebuilt months keep theirs
-- (from the cut rows); the new ones follow them in arrival order.
credits_sequenced as (

    select
        cut_rows.customer_id,
        cut_rows.credit_id,
        cut_rows.credit_kind,
        cut_rows.credited_at,
        max(cut_rows.position_to_amount) as credit_key,
        min(cut_rows.position_from_amount) as range_start
    from cut_rows
    inner join cuts
        on cut_rows.customer_id = cuts.customer_id
    where cut_rows.credited_at < cuts.credits_from
    group by cut_rows.customer_id, cut_rows.credit_id, cut_rows.credit_kind, cut_rows.credited_at

    union all

    select
        running.customer_id,
        running.credit_id,
        running.credit_kind,
        running.credited_at,
        running.credit_key,
        greatest(running.credit_key - running.credit_amount, running.cut_amount) as range_start
    from (
        select
            credits.*,
            cuts.cut_amount,
            cuts.credited_before_amount + sum(credits.credit_amount) over (
                partition by credits.customer_id
                order by credits.credited_at, credits.credit_id
                rows between unbounded preceding and current row
            ) as credit_key
        from credits
        inner join cuts
            on credits.customer_id = cuts.customer_id
        where credits.credit_amount > 0
    ) as running

),

{%- else %}
-- credit_key: the credit's end position, increasing in arrival order (amounts are positive)
credits_sequenced as (

    select
        running.customer_id,
        running.credit_id,
        running.credit_kind,
        running.credited_at,
        running.credit_key,
        running.credit_key - running.credit_amount as range_start
    from (
        select
            credits.*,
            sum(credits.credit_amount) over (
                partition by credits.customer_id
                order by credits.credited_at, credits.credit_id
                rows between unbounded preceding and current row
            ) as credit_key
        from credits
        where credits.credit_amount > 0
    ) as running

),

{%- endif %}

credit_totals as (

    select
        credits_sequenced.customer_id,
        max(credits_sequenced.credit_key) as credited_amount
    from credits_sequenced
    group by credits_sequenced.customer_id

),

-- the lowest position allocated here: the customer's cut (tail), or 0 (full build)
lowest_positions as (

    {% if tail_only -%}
    select
        cuts.customer_id,
        cuts.cut_amount as position_amount
    from cuts
    {%- else %}
    select
        credit_totals.customer_id,
        0 as position_amount
    from credit_totals
    {%- endif %}

),

customer_totals as (

    select
        credit_totals.customer_id,
        credit_totals.credited_amount,
        coalesce(bill_totals.billed_amount, 0) as billed_amount
    from credit_totals
    left join bill_totals
        on credit_totals.customer_id = bill_totals.customer_id

),

break_points as (

    select
        receivables.customer_id,
        receivables.range_start,
        receivables.bill_key,
        cast(null as numeric) as credit_key
    from receivables

    union all

    select
        credits_sequenced.customer_id,
        credits_sequenced.range_start,
        cast(null as numeric) as bill_key,
        credits_sequenced.credit_key
    from credits_sequenced

    union all

    -- end of the last bill: credit past this point is unapplied (carried forward)
    select
        customer_totals.customer_id,
        customer_totals.billed_amount as range_start,
        cast(null as numeric) as bill_key,
        cast(null as numeric) as credit_key
    from customer_totals
    inner join lowest_positions
        on customer_totals.customer_id = lowest_positions.customer_id
    where customer_totals.billed_amount >= lowest_positions.position_amount

),

segments as (

    select
        break_points.customer_id,
        break_points.range_start,
        lead(break_points.range_start) over (
            partition by break_points.customer_id
            order by break_points.range_start, break_points.bill_key, break_points.credit_key
        ) as next_range_start,
        max(break_points.bill_key) over (
            partition by break_points.customer_id
            order by break_points.range_start, break_points.bill_key, break_points.credit_key
            rows between unbounded preceding and current row
        ) as bill_key,
        max(break_points.credit_key) over (
            partition by break_points.customer_id
            order by break_points.range_start, break_points.bill_key, break_points.credit_key
            rows between unbounded preceding and current row
        ) as credit_key
    from break_points

),

allocated_segments as (

    -- a segment belongs to the credit whose range holds it and, before the end of the last bill,
    -- to the bill whose range holds it; past the last credit it is unpaid (no allocation)
    select
        segments.customer_id,
        segments.range_start,
        case
            when segments.range_start < customer_totals.billed_amount then segments.bill_key
        end as bill_key,
        segments.credit_key,
        least(
            coalesce(segments.next_range_start, customer_totals.credited_amount),
            customer_totals.credited_amount
        ) - segments.range_start as segment_amount
    from segments
    inner join customer_totals
        on segments.customer_id = customer_totals.customer_id
    where
        segments.credit_key is not null
        and segments.range_start < customer_totals.credited_amount

),

-- a bill's and a credit's ranges overlap in one interval: each row is one range of positions
allocations as (

    select
        allocated_segments.customer_id,
        allocated_segments.bill_key,
        allocated_segments.credit_key,
        sum(allocated_segments.segment_amount) as allocated_amount,
        min(allocated_segments.range_start) as position_from_amount,
        max(allocated_segments.range_start + allocated_segments.segment_amount) as position_to_amount
    from allocated_segments
    group by allocated_segments.customer_id, allocated_segments.bill_key, allocated_segments.credit_key
    having sum(allocated_segments.segment_amount) > 0

),

final as (

    select
        {{ gridcredit.surrogate_key(['credits_sequenced.credit_id', 'receivables.bill_id']) }} as allocation_id,
        allocations.customer_id,
        receivables.bill_id,
        credits_sequenced.credit_id,
        credits_sequenced.credit_kind,
        allocations.allocated_amount,
        case
            when receivables.bill_id is null then credits_sequenced.credited_at
            when credits_sequenced.credited_at < cast(receivables.issue_date as timestamp)
                then cast(receivables.issue_date as timestamp)
            else credits_sequenced.credited_at
        end as allocated_at,
        credits_sequenced.credited_at,
        receivables.issue_date as bill_issue_date,
        receivables.due_date as bill_due_date,
        receivables.bill_id is null as is_unapplied_credit,
        coalesce(credits_sequenced.credited_at < cast(receivables.issue_date as timestamp), false)
            as is_advance_payment,
        allocations.position_from_amount,
        allocations.position_to_amount,
        -- the newest load of the later of the credit's month and the bill's due month (clamped to
        -- the data horizon): a load touching an earlier month cuts the row (ADR 0112)
        ledger.source_load_id
    from allocations
    inner join credits_sequenced
        on
            allocations.customer_id = credits_sequenced.customer_id
            and allocations.credit_key = credits_sequenced.credit_key
    left join receivables
        on
            allocations.customer_id = receivables.customer_id
            and allocations.bill_key = receivables.bill_key
    cross join ledger_horizon
    left join ledger
        on
            ledger.month_start_date = greatest(
                least(
                    greatest(
                        {{ gridcredit.month_start('credits_sequenced.credited_at') }},
                        coalesce(
                            {{ gridcredit.month_start('receivables.due_date') }},
                            {{ gridcredit.month_start('credits_sequenced.credited_at') }}
                        )
                    ),
                    ledger_horizon.last_month
                ),
                ledger_horizon.first_month
            )

)

select * from final
