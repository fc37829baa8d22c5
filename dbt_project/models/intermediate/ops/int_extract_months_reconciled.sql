-- The extract side of the reconciliation (fct_reconciliation_months), per month and measure:
--   billed:     bills by issue month (manifest and raw: every status; current: not cancelled);
--   collected:  payments and reversals by payment month.
-- manifest_amount is what the extract manifests declared for the month (ops.manifest_month_totals,
-- summed over the loads that carry month totals), manifest_rejected_amount the part of it those
-- loads refused, raw_delivered_amount what those loads put into the raw table (every version);
-- declared - refused = delivered when the raw table holds what the files held. raw_amount is the
-- raw table as it stands (latest version per key, by the measure's rule), recomputed from the raw
-- rows, not read from staging. A load with refused lines whose month or amount could not be read
-- cannot be checked against its manifest (is_manifest_checked false for the months it declared).
with

manifest_totals as (

    select * from {{ ref('stg_ops__manifest_month_totals') }}

),

ledger as (

    select * from {{ ref('stg_ops__load_ledger') }}

),

bill_deliveries as (

    select * from {{ ref('stg_billing__bill_deliveries') }}

),

payment_deliveries as (

    select * from {{ ref('stg_billing__payment_deliveries') }}

),

manifest_measures as (

    select
        manifest_totals.load_id,
        manifest_totals.month_start_date,
        case ledger.table_name when 'bills' then 'billed' else 'collected' end as measure,
        manifest_totals.manifest_amount,
        manifest_totals.rejected_amount,
        manifest_totals.rejected_unreadable_rows
    from manifest_totals
    inner join ledger
        on manifest_totals.load_id = ledger.load_id
    where
        ledger.source_system = 'billing'
        and ledger.table_name in ('bills', 'payments')
        and manifest_totals.column_name = 'amount'

),

manifest_loads as (

    select
        manifest_measures.load_id,
        manifest_measures.measure,
        sum(manifest_measures.rejected_unreadable_rows) as rejected_unreadable_rows
    from manifest_measures
    group by manifest_measures.load_id, manifest_measures.measure

),

declared as (

    select
        manifest_measures.measure,
        manifest_measures.month_start_date,
        sum(manifest_measures.manifest_amount) as manifest_amount,
        sum(manifest_measures.rejected_amount) as manifest_rejected_amount,
        max(case when manifest_loads.rejected_unreadable_rows > 0 then 1 else 0 end) as has_unreadable_rejects
    from manifest_measures
    inner join manifest_loads
        on
            manifest_measures.load_id = manifest_loads.load_id
            and manifest_measures.measure = manifest_loads.measure
    where manifest_measures.month_start_date is not null
    group by manifest_measures.measure, manifest_measures.month_start_date

),

deliveries as (

    select
        'billed' as measure,
        bill_deliveries.load_id,
        {{ gridcredit.month_start('bill_deliveries.issue_date') }} as month_start_date,
        bill_deliveries.bill_amount as amount,
        bill_deliveries.is_latest_version and bill_deliveries.bill_status <> 'cancelled' as is_current
    from bill_deliveries

    union all

    select
        'collected' as measure,
        payment_deliveries.load_id,
        {{ gridcredit.month_start('payment_deliveries.paid_at') }} as month_start_date,
        payment_deliveries.payment_amount as amount,
        payment_deliveries.is_latest_version as is_current
    from payment_deliveries

),

delivered as (

    select
        deliveries.measure,
        deliveries.month_start_date,
        sum(case when manifest_loads.load_id is not null then deliveries.amount else 0 end)
            as raw_delivered_amount,
        sum(case when deliveries.is_current then deliveries.amount else 0 end) as raw_amount
    from deliveries
    left join manifest_loads
        on
            deliveries.load_id = manifest_loads.load_id
            and deliveries.measure = manifest_loads.measure
    group by deliveries.measure, deliveries.month_start_date

),

final as (

    select
        coalesce(declared.measure, delivered.measure) as measure,
        coalesce(declared.month_start_date, delivered.month_start_date) as month_start_date,
        declared.manifest_amount,
        declared.manifest_rejected_amount,
        case when declared.measure is not null then coalesce(delivered.raw_delivered_amount, 0) end
            as raw_delivered_amount,
        coalesce(delivered.raw_amount, 0) as raw_amount,
        coalesce(declared.measure is not null and declared.has_unreadable_rejects = 0, false)
            as is_manifest_checked
    from declared
    full outer join delivered
        on
            declared.measure = delivered.measure
            and declared.month_start_date = delivered.month_start_date

)

select * from final
