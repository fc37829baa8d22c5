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
with

bills as (

    select * from {{ ref('stg_billing__bills') }}

),

payments as (

    select * from {{ ref('stg_billing__payments') }}

),

receivables as (

    select
        bills.customer_id,
        bills.bill_id,
        bills.issue_date,
        bills.due_date,
        bills.bill_amount,
        row_number() over (
            partition by bills.customer_id
            order by bills.due_date, bills.issue_date, bills.bill_id
        ) as bill_sequence,
        sum(bills.bill_amount) over (
            partition by bills.customer_id
            order by bills.due_date, bills.issue_date, bills.bill_id
            rows between unbounded preceding and current row
        ) as billed_through_amount
    from bills
    where bills.bill_status <> 'cancelled' and bills.bill_amount > 0

),

reversals as (

    select
        payments.customer_id,
        payments.reverses_payment_id as payment_id,
        sum(payments.payment_amount) as reversed_amount
    from payments
    where payments.reverses_payment_id is not null
    group by payments.customer_id, payments.reverses_payment_id

),

credits as (

    select
        payments.customer_id,
        payments.payment_id as credit_id,
        'payment' as credit_kind,
        payments.paid_at as credited_at,
        payments.payment_amount + coalesce(reversals.reversed_amount, 0) as credit_amount
    from payments
    left join reversals
        on
            payments.customer_id = reversals.customer_id
            and payments.payment_id = reversals.payment_id
    where payments.reverses_payment_id is null

    union all

    select
        bills.customer_id,
        bills.bill_id as credit_id,
        'credit_note' as credit_kind,
        cast(bills.issue_date as timestamp) as credited_at,
        -bills.bill_amount as credit_amount
    from bills
    where bills.bill_status <> 'cancelled' and bills.bill_amount < 0

),

credits_sequenced as (

    select
        credits.*,
        row_number() over (
            partition by credits.customer_id
            order by credits.credited_at, credits.credit_id
        ) as credit_sequence,
        sum(credits.credit_amount) over (
            partition by credits.customer_id
            order by credits.credited_at, credits.credit_id
            rows between unbounded preceding and current row
        ) as credited_through_amount
    from credits
    where credits.credit_amount > 0

),

credit_totals as (

    select
        credits_sequenced.customer_id,
        max(credits_sequenced.credited_through_amount) as credited_amount
    from credits_sequenced
    group by credits_sequenced.customer_id

),

bill_totals as (

    select
        receivables.customer_id,
        max(receivables.billed_through_amount) as billed_amount
    from receivables
    group by receivables.customer_id

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
        receivables.billed_through_amount - receivables.bill_amount as range_start,
        receivables.bill_sequence,
        cast(null as bigint) as credit_sequence
    from receivables

    union all

    select
        credits_sequenced.customer_id,
        credits_sequenced.credited_through_amount - credits_sequenced.credit_amount as range_start,
        cast(null as bigint) as bill_sequence,
        credits_sequenced.credit_sequence
    from credits_sequenced

    union all

    -- end of the last bill: credit past this point is unapplied (carried forward)
    select
        customer_totals.customer_id,
        customer_totals.billed_amount as range_start,
        cast(null as bigint) as bill_sequence,
        cast(null as bigint) as credit_sequence
    from customer_totals

),

segments as (

    select
        break_points.customer_id,
        break_points.range_start,
        lead(break_points.range_start) over (
            partition by break_points.customer_id
            order by break_points.range_start, break_points.bill_sequence, break_points.credit_sequence
        ) as next_range_start,
        max(break_points.bill_sequence) over (
            partition by break_points.customer_id
            order by break_points.range_start, break_points.bill_sequence, break_points.credit_sequence
            rows between unbounded preceding and current row
        ) as bill_sequence,
        max(break_points.credit_sequence) over (
            partition by break_points.customer_id
            order by break_points.range_start, break_points.bill_sequence, break_points.credit_sequence
            rows between unbounded preceding and current row
        ) as credit_sequence
    from break_points

),

allocated_segments as (

    -- a segment belongs to the credit whose range holds it and, before the end of the last bill,
    -- to the bill whose range holds it; past the last credit it is unpaid (no allocation)
    select
        segments.customer_id,
        case
            when segments.range_start < customer_totals.billed_amount then segments.bill_sequence
        end as bill_sequence,
        segments.credit_sequence,
        least(
            coalesce(segments.next_range_start, customer_totals.credited_amount),
            customer_totals.credited_amount
        ) - segments.range_start as segment_amount
    from segments
    inner join customer_totals
        on segments.customer_id = customer_totals.customer_id
    where
        segments.credit_sequence is not null
        and segments.range_start < customer_totals.credited_amount

),

allocations as (

    select
        allocated_segments.customer_id,
        allocated_segments.bill_sequence,
        allocated_segments.credit_sequence,
        sum(allocated_segments.segment_amount) as allocated_amount
    from allocated_segments
    group by allocated_segments.customer_id, allocated_segments.bill_sequence, allocated_segments.credit_sequence
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
            as is_advance_payment
    from allocations
    inner join credits_sequenced
        on
            allocations.customer_id = credits_sequenced.customer_id
            and allocations.credit_sequence = credits_sequenced.credit_sequence
    left join receivables
        on
            allocations.customer_id = receivables.customer_id
            and allocations.bill_sequence = receivables.bill_sequence

)

select * from final
