-- Payment allocations (as the books stand today) summed per customer per month, for the recovery
-- rates: what was collected in the month against the month's own bills and against all open
-- bills, and what was still open at the start and at the end of the month. One row per customer per
-- month of the spine. Not leak-free by design (a later reversal re-allocates history): collections
-- reporting only, never ML features. Amounts dated before a customer's first row count in that row.
--
-- Incremental by month (docs/decisions/0108), as its reader fct_collection_segment_months: a load
-- touching months from m on changes the allocations made from m on (a credit meets a bill at the
-- later of their dates, and bills and credits keep their order), and a reversal changes them from the
-- reversed payment's month on (ADR 0107). The opening receivable of the rebuilt months starts from
-- this model's closing receivable of the month before.
{%- set reprocess_from = gridcredit.incremental_by_month(reached_back_by=ref('int_payment_reversals_reaching_back')) %}
{%- set carries = reprocess_from not in ('all', 'none') %}
{%- set customers_starting_in_rebuilt_months -%}
select first_months.customer_id from first_months
where {{ gridcredit.reprocess_filter('first_months.first_month', reprocess_from) }}
{%- endset %}
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

{% if carries -%}
-- the receivable still open at the end of the month before the first rebuilt month
carried as (

    select
        previous.customer_id,
        previous.closing_receivable_amount
    from {{ this }} as previous
    where previous.month_start_date = {{ gridcredit.add_months("cast('" ~ reprocess_from ~ "' as date)", -1) }}

),
{%- endif %}

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
    where
        allocations.bill_id is not null
        and {{ gridcredit.reprocess_filter_or_customers(
            gridcredit.month_start('allocations.allocated_at'), reprocess_from,
            'allocations.customer_id', customers_starting_in_rebuilt_months
        ) }}

    union all

    select
        bills.customer_id,
        bills.billed_month as entry_month,
        0 as collected_against_bills_amount,
        0 as collected_against_month_bills_amount,
        0 as settled_amount,
        bills.bill_amount as receivable_billed_amount
    from bills
    where {{ gridcredit.reprocess_filter_or_customers(
        'bills.billed_month', reprocess_from, 'bills.customer_id', customers_starting_in_rebuilt_months
    ) }}

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
        {%- if carries %}
        coalesce(carried.closing_receivable_amount, 0)
        {%- else %}
        0
        {%- endif %}
        + coalesce(
            sum(monthly.receivable_billed_amount - monthly.settled_amount) over (
                partition by spine.customer_id
                order by spine.month_start_date
                rows between unbounded preceding and 1 preceding
            ),
            0
        ) as opening_receivable_amount,
        coalesce(monthly.receivable_billed_amount, 0) - coalesce(monthly.settled_amount, 0) as month_change_amount,
        spine.source_load_id
    from spine
    left join monthly
        on
            spine.customer_id = monthly.customer_id
            and spine.month_start_date = monthly.month_start_date
    {%- if carries %}
    left join carried
        on spine.customer_id = carried.customer_id
    {%- endif %}
    where {{ gridcredit.reprocess_filter('spine.month_start_date', reprocess_from) }}

),

final as (

    select
        cumulated.customer_id,
        cumulated.month_start_date,
        cumulated.receivable_billed_amount,
        cumulated.collected_against_month_bills_amount,
        cumulated.collected_against_bills_amount,
        cumulated.opening_receivable_amount,
        cumulated.opening_receivable_amount + cumulated.month_change_amount as closing_receivable_amount,
        cumulated.source_load_id
    from cumulated

)

select * from final
