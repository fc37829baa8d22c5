-- Payment allocations (as the books stand today) summed per customer per month, for the recovery
-- rates: what was collected in the month against the month's own bills and against all open
-- bills, and what was still open at the start of the month. One row per customer per month of
-- the spine. Not leak-free by design (a later reversal re-allocates history): collections
-- reporting only, never ML features.
with

spine as (

    select * from {{ ref('int_customer_months_spined') }}

),

allocations as (

    select * from {{ ref('int_payments_allocated_to_bills') }}

),

bills as (

    select * from {{ ref('int_bills_sequenced') }}

),

first_months as (

    select
        spine.customer_id,
        min(spine.month_start_date) as first_month
    from spine
    group by spine.customer_id

),

entries as (

    select
        allocations.customer_id,
        {{ gridcredit.month_start('allocations.allocated_at') }} as entry_month,
        case when allocations.credit_kind = 'payment' then allocations.allocated_amount else 0 end
            as collected_against_bills_amount,
        case
            when
                allocations.credit_kind = 'payment'
                and {{ gridcredit.month_start('allocations.bill_issue_date') }}
                = {{ gridcredit.month_start('allocations.allocated_at') }}
                then allocations.allocated_amount
            else 0
        end as collected_against_month_bills_amount,
        allocations.allocated_amount as settled_amount,
        0 as receivable_billed_amount
    from allocations
    where allocations.bill_id is not null

    union all

    select
        bills.customer_id,
        bills.billed_month as entry_month,
        0 as collected_against_bills_amount,
        0 as collected_against_month_bills_amount,
        0 as settled_amount,
        bills.bill_amount as receivable_billed_amount
    from bills

),

monthly as (

    select
        entries.customer_id,
        greatest(entries.entry_month, first_months.first_month) as month_start_date,
        sum(entries.collected_against_bills_amount) as collected_against_bills_amount,
        sum(entries.collected_against_month_bills_amount) as collected_against_month_bills_amount,
        sum(entries.settled_amount) as settled_amount,
        sum(entries.receivable_billed_amount) as receivable_billed_amount
    from entries
    inner join first_months
        on entries.customer_id = first_months.customer_id
    group by entries.customer_id, greatest(entries.entry_month, first_months.first_month)

),

cumulated as (

    select
        spine.customer_id,
        spine.month_start_date,
        coalesce(monthly.receivable_billed_amount, 0) as receivable_billed_amount,
        coalesce(monthly.collected_against_month_bills_amount, 0) as collected_against_month_bills_amount,
        coalesce(monthly.collected_against_bills_amount, 0) as collected_against_bills_amount,
        coalesce(
            sum(monthly.receivable_billed_amount - monthly.settled_amount) over (
                partition by spine.customer_id
                order by spine.month_start_date
                rows between unbounded preceding and 1 preceding
            ),
            0
        ) as opening_receivable_amount
    from spine
    left join monthly
        on
            spine.customer_id = monthly.customer_id
            and spine.month_start_date = monthly.month_start_date

),

final as (

    select * from cumulated

)

select * from final
