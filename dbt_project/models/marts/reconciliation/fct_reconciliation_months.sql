-- Reconciliation: one row per month per measure, the same total computed along independent paths
-- from the extract manifests to the marts; a test fails on any difference:
--   manifest -> raw:  what the manifests declared for the month, less what the loads refused,
--                     against what those loads put into the raw tables (int_extract_months_reconciled);
--   raw -> marts:     the raw tables as they stand (latest version per key, recomputed from the raw
--                     rows), staging (the extract as loaded), the bills fact, the customer-month and
--                     the collections mart.
--   billed:          bills issued in the month, not cancelled (credit notes net).
--   collected:       payments and reversals dated in the month.
--   net_receivable:  receivable balance minus credit balance at the month end, summed over
--                    customers; equals everything billed minus everything credited to date.
--   arrears:         overdue amount at the end of the latest month: customer-month (running
--                    totals) against the bills fact (payment allocation), two unrelated methods.
with

bills as (

    select * from {{ ref('stg_billing__bills') }}

),

payments as (

    select * from {{ ref('stg_billing__payments') }}

),

bills_fact as (

    select * from {{ ref('fct_bills') }}

),

customer_months as (

    select * from {{ ref('fct_customer_months') }}

),

collections as (

    select * from {{ ref('fct_collection_segment_months') }}
    where segment_dimension = 'all'

),

months as (

    select * from {{ ref('int_load_ledger_months') }}

),

extract_months as (

    select * from {{ ref('int_extract_months_reconciled') }}

),

raw_billed as (

    select * from extract_months
    where measure = 'billed'

),

raw_collected as (

    select * from extract_months
    where measure = 'collected'

),

raw_net_receivable as (

    select
        months.month_start_date,
        coalesce(sum(extract_months.raw_amount * case when extract_months.measure = 'billed' then 1 else -1 end), 0)
            as raw_amount
    from months
    left join extract_months
        on months.month_start_date >= extract_months.month_start_date
    group by months.month_start_date

),

extract_billed as (

    select
        {{ gridcredit.month_start('bills.issue_date') }} as month_start_date,
        sum(bills.bill_amount) as billed_amount
    from bills
    where bills.bill_status <> 'cancelled'
    group by {{ gridcredit.month_start('bills.issue_date') }}

),

extract_collected as (

    select
        {{ gridcredit.month_start('payments.paid_at') }} as month_start_date,
        sum(payments.payment_amount) as collected_amount
    from payments
    group by {{ gridcredit.month_start('payments.paid_at') }}

),

extract_net_receivable as (

    select
        months.month_start_date,
        coalesce(sum(extract_billed.billed_amount), 0) as billed_to_date_amount
    from months
    left join extract_billed
        on months.month_start_date >= extract_billed.month_start_date
    group by months.month_start_date

),

extract_collected_to_date as (

    select
        months.month_start_date,
        coalesce(sum(extract_collected.collected_amount), 0) as collected_to_date_amount
    from months
    left join extract_collected
        on months.month_start_date >= extract_collected.month_start_date
    group by months.month_start_date

),

fact_billed as (

    select
        bills_fact.billed_month as month_start_date,
        sum(bills_fact.bill_amount) as billed_amount
    from bills_fact
    where bills_fact.payment_status <> 'cancelled'
    group by bills_fact.billed_month

),

fact_arrears as (

    select
        months.month_start_date,
        sum(bills_fact.outstanding_amount) as arrears_amount
    from bills_fact
    inner join months
        on months.is_latest_month and bills_fact.due_date < months.month_end_date
    group by months.month_start_date

),

customer_month_totals as (

    select
        customer_months.month_start_date,
        sum(customer_months.billed_amount) as billed_amount,
        sum(customer_months.collected_amount) as collected_amount,
        sum(customer_months.receivable_balance_amount - customer_months.credit_balance_amount)
            as net_receivable_amount,
        sum(customer_months.arrears_amount) as arrears_amount
    from customer_months
    group by customer_months.month_start_date

),

measures as (

    select
        months.month_start_date,
        'billed' as measure,
        raw_billed.manifest_amount,
        raw_billed.manifest_rejected_amount,
        raw_billed.raw_delivered_amount,
        coalesce(raw_billed.is_manifest_checked, false) as is_manifest_checked,
        coalesce(raw_billed.raw_amount, 0) as raw_amount,
        coalesce(extract_billed.billed_amount, 0) as extract_amount,
        coalesce(fact_billed.billed_amount, 0) as bills_fact_amount,
        coalesce(customer_month_totals.billed_amount, 0) as customer_month_amount,
        coalesce(collections.billed_amount, 0) as collections_amount
    from months
    left join raw_billed on months.month_start_date = raw_billed.month_start_date
    left join extract_billed on months.month_start_date = extract_billed.month_start_date
    left join fact_billed on months.month_start_date = fact_billed.month_start_date
    left join customer_month_totals on months.month_start_date = customer_month_totals.month_start_date
    left join collections on months.month_start_date = collections.month_start_date

    union all

    select
        months.month_start_date,
        'collected' as measure,
        raw_collected.manifest_amount,
        raw_collected.manifest_rejected_amount,
        raw_collected.raw_delivered_amount,
        coalesce(raw_collected.is_manifest_checked, false) as is_manifest_checked,
        coalesce(raw_collected.raw_amount, 0) as raw_amount,
        coalesce(extract_collected.collected_amount, 0) as extract_amount,
        null as bills_fact_amount,
        coalesce(customer_month_totals.collected_amount, 0) as customer_month_amount,
        coalesce(collections.collected_amount, 0) as collections_amount
    from months
    left join raw_collected on months.month_start_date = raw_collected.month_start_date
    left join extract_collected on months.month_start_date = extract_collected.month_start_date
    left join customer_month_totals on months.month_start_date = customer_month_totals.month_start_date
    left join collections on months.month_start_date = collections.month_start_date

    union all

    select
        months.month_start_date,
        'net_receivable' as measure,
        null as manifest_amount,
        null as manifest_rejected_amount,
        null as raw_delivered_amount,
        false as is_manifest_checked,
        raw_net_receivable.raw_amount,
        extract_net_receivable.billed_to_date_amount - extract_collected_to_date.collected_to_date_amount
            as extract_amount,
        null as bills_fact_amount,
        coalesce(customer_month_totals.net_receivable_amount, 0) as customer_month_amount,
        null as collections_amount
    from months
    inner join extract_net_receivable on months.month_start_date = extract_net_receivable.month_start_date
    inner join extract_collected_to_date on months.month_start_date = extract_collected_to_date.month_start_date
    inner join raw_net_receivable on months.month_start_date = raw_net_receivable.month_start_date
    left join customer_month_totals on months.month_start_date = customer_month_totals.month_start_date

    union all

    select
        months.month_start_date,
        'arrears' as measure,
        null as manifest_amount,
        null as manifest_rejected_amount,
        null as raw_delivered_amount,
        false as is_manifest_checked,
        null as raw_amount,
        null as extract_amount,
        coalesce(fact_arrears.arrears_amount, 0) as bills_fact_amount,
        coalesce(customer_month_totals.arrears_amount, 0) as customer_month_amount,
        coalesce(collections.arrears_amount, 0) as collections_amount
    from months
    left join fact_arrears on months.month_start_date = fact_arrears.month_start_date
    left join customer_month_totals on months.month_start_date = customer_month_totals.month_start_date
    left join collections on months.month_start_date = collections.month_start_date
    where months.is_latest_month

),

compared as (

    select
        {{ gridcredit.surrogate_key(['measures.month_start_date', 'measures.measure']) }} as reconciliation_id,
        measures.month_start_date,
        measures.measure,
        cast(measures.manifest_amount as numeric(18, 2)) as manifest_amount,
        cast(measures.manifest_rejected_amount as numeric(18, 2)) as manifest_rejected_amount,
        cast(measures.raw_delivered_amount as numeric(18, 2)) as raw_delivered_amount,
        -- declared less refused against delivered: 0 when the raw tables hold what the files held
        cast(
            measures.manifest_amount - measures.manifest_rejected_amount - measures.raw_delivered_amount
            as numeric(18, 2)
        ) as manifest_difference_amount,
        measures.is_manifest_checked,
        cast(measures.raw_amount as numeric(18, 2)) as raw_amount,
        cast(measures.extract_amount as numeric(18, 2)) as extract_amount,
        cast(measures.bills_fact_amount as numeric(18, 2)) as bills_fact_amount,
        cast(measures.customer_month_amount as numeric(18, 2)) as customer_month_amount,
        cast(measures.collections_amount as numeric(18, 2)) as collections_amount,
        -- spread between the largest and the smallest of the paths that compute the measure
        cast(
            greatest(
                coalesce(measures.raw_amount, measures.customer_month_amount),
                coalesce(measures.extract_amount, measures.customer_month_amount),
                coalesce(measures.bills_fact_amount, measures.customer_month_amount),
                measures.customer_month_amount,
                coalesce(measures.collections_amount, measures.customer_month_amount)
            )
            - least(
                coalesce(measures.raw_amount, measures.customer_month_amount),
                coalesce(measures.extract_amount, measures.customer_month_amount),
                coalesce(measures.bills_fact_amount, measures.customer_month_amount),
                measures.customer_month_amount,
                coalesce(measures.collections_amount, measures.customer_month_amount)
            )
            as numeric(18, 2)
        ) as difference_amount
    from measures

),

final as (

    select
        compared.*,
        compared.difference_amount = 0
        and (not compared.is_manifest_checked or compared.manifest_difference_amount = 0) as is_reconciled
    from compared

)

select * from final
