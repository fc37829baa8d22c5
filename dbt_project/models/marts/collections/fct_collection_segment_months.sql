-- Collections by segment: one row per segment dimension, segment value and month. Dimensions:
-- supply region, industry, customer type, tariff, settlement method, payment method, value tier,
-- and `all` (the whole book). Recovery rates, arrears, aging and days sales outstanding
-- (definitions in docs/definitions.md). A customer counts in the segment it belongs to at the
-- month end. Incremental by month (ADR 0103): a month's rows read that month's customer-months and,
-- for the 3-month billed amount of DSO, the two before, so a rebuild reads two months more. The
-- recovery columns come from the payment allocation, which a reversal changes from the reversed
-- payment's month on: a new reversal rebuilds from that month (ADR 0107), and the rebuilt months
-- carry its load in source_load_id (ADR 0108).
{%- set reprocess_from = gridcredit.incremental_by_month(
    customer_keyed=false, reached_back_by=ref('int_payment_reversals_reaching_back')
) %}
{%- set dimensions = [
    'region_code', 'industry_code', 'customer_type', 'tariff_code',
    'settlement_method', 'payment_method', 'value_tier',
] %}

with

customer_months as (

    select * from {{ ref('fct_customer_months') }}
    where {{ gridcredit.reprocess_filter('month_start_date', reprocess_from, lookback_months=2) }}

),

indicators as (

    select * from {{ ref('fct_customer_month_indicators') }}
    where {{ gridcredit.reprocess_filter('month_start_date', reprocess_from, lookback_months=2) }}

),

allocations as (

    select * from {{ ref('int_allocations_aggregated_to_customer_months') }}
    where {{ gridcredit.reprocess_filter('month_start_date', reprocess_from, lookback_months=2) }}

),

segmented as (

    select
        customer_months.month_start_date,
        customer_months.month_end_date,
        'all' as segment_all,
        {%- for dimension in dimensions %}
        {%- if dimension == 'value_tier' %}
        coalesce(indicators.value_tier, 'unranked') as value_tier,
        {%- else %}
        customer_months.{{ dimension }},
        {%- endif %}
        {%- endfor %}
        customer_months.billed_amount,
        customer_months.collected_amount,
        customer_months.receivable_balance_amount,
        customer_months.arrears_amount,
        customer_months.arrears_0_30_days_amount,
        customer_months.arrears_31_60_days_amount,
        customer_months.arrears_61_90_days_amount,
        customer_months.arrears_over_90_days_amount,
        case when customer_months.is_in_arrears then 1 else 0 end as is_in_arrears_count,
        sum(customer_months.billed_amount) over (
            partition by customer_months.customer_id
            order by customer_months.month_start_date
            rows between 2 preceding and current row
        ) as billed_3m_amount,
        allocations.receivable_billed_amount,
        allocations.collected_against_month_bills_amount,
        allocations.collected_against_bills_amount,
        allocations.opening_receivable_amount,
        customer_months.source_load_id
    from customer_months
    inner join indicators
        on customer_months.customer_month_id = indicators.customer_month_id
    inner join allocations
        on
            customer_months.customer_id = allocations.customer_id
            and customer_months.month_start_date = allocations.month_start_date

),

aggregated as (

    {%- for dimension in ['all'] + dimensions %}
    select
        '{{ dimension }}' as segment_dimension,
        {{ dbt.cast('segmented.' ~ ('segment_all' if dimension == 'all' else dimension), dbt.type_string()) }}
            as segment_value,
        segmented.month_start_date,
        segmented.month_end_date,
        count(*) as customer_count,
        sum(segmented.is_in_arrears_count) as customers_in_arrears_count,
        sum(segmented.billed_amount) as billed_amount,
        sum(segmented.collected_amount) as collected_amount,
        sum(segmented.receivable_billed_amount) as receivable_billed_amount,
        sum(segmented.collected_against_month_bills_amount) as collected_against_month_bills_amount,
        sum(segmented.collected_against_bills_amount) as collected_against_bills_amount,
        sum(segmented.opening_receivable_amount) as opening_receivable_amount,
        sum(segmented.receivable_balance_amount) as receivable_balance_amount,
        sum(segmented.arrears_amount) as arrears_amount,
        sum(segmented.arrears_0_30_days_amount) as arrears_0_30_days_amount,
        sum(segmented.arrears_31_60_days_amount) as arrears_31_60_days_amount,
        sum(segmented.arrears_61_90_days_amount) as arrears_61_90_days_amount,
        sum(segmented.arrears_over_90_days_amount) as arrears_over_90_days_amount,
        sum(segmented.billed_3m_amount) as billed_3m_amount,
        max(segmented.source_load_id) as source_load_id
    from segmented
    where {{ gridcredit.reprocess_filter('segmented.month_start_date', reprocess_from) }}
    group by
        {{ 'segmented.segment_all' if dimension == 'all' else 'segmented.' ~ dimension }},
        segmented.month_start_date,
        segmented.month_end_date
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}

),

-- For each month, the newest reversal reaching back to it or to an earlier month: it can change the
-- month's recovery columns, so the month's rows carry it in source_load_id. The build area's
-- catch-up copies a month from the published table only when its source_load_id is newer
-- (gridcredit/publish.py), so a month a reversal rebuilt must say so.
reversals_reaching_back as (

    select
        reached.month_start_date,
        max(reached.source_load_id) as source_load_id
    from {{ ref('int_payment_reversals_reaching_back') }} as reached
    group by reached.month_start_date

),

reached_months as (

    select
        months.month_start_date,
        max(reversals_reaching_back.source_load_id) as source_load_id
    from {{ ref('int_load_ledger_months') }} as months
    inner join reversals_reaching_back
        on months.month_start_date >= reversals_reaching_back.month_start_date
    where {{ gridcredit.reprocess_filter('months.month_start_date', reprocess_from) }}
    group by months.month_start_date

),

final as (

    select
        {{ gridcredit.surrogate_key(['aggregated.segment_dimension', 'aggregated.segment_value', 'aggregated.month_start_date']) }}
            as segment_month_id,
        aggregated.segment_dimension,
        aggregated.segment_value,
        aggregated.month_start_date,
        aggregated.customer_count,
        aggregated.customers_in_arrears_count,
        aggregated.billed_amount,
        aggregated.collected_amount,
        aggregated.receivable_billed_amount,
        aggregated.collected_against_month_bills_amount,
        cast(
            {{ gridcredit.safe_divide('aggregated.collected_against_month_bills_amount', 'aggregated.receivable_billed_amount') }}
            as numeric(9, 6)
        ) as recovery_rate,
        aggregated.collected_against_bills_amount,
        aggregated.opening_receivable_amount,
        cast(
            {{ gridcredit.safe_divide(
                'aggregated.collected_against_bills_amount',
                'aggregated.receivable_billed_amount + aggregated.opening_receivable_amount'
            ) }}
            as numeric(9, 6)
        ) as cumulative_recovery_rate,
        aggregated.receivable_balance_amount,
        aggregated.arrears_amount,
        aggregated.arrears_0_30_days_amount,
        aggregated.arrears_31_60_days_amount,
        aggregated.arrears_61_90_days_amount,
        aggregated.arrears_over_90_days_amount,
        aggregated.billed_3m_amount,
        cast(
            {{ gridcredit.safe_divide(
                'aggregated.receivable_balance_amount * (' ~ gridcredit.days_between(
                    gridcredit.add_months('aggregated.month_start_date', -2), 'aggregated.month_end_date'
                ) ~ ' + 1)',
                'aggregated.billed_3m_amount'
            ) }}
            as numeric(18, 2)
        ) as days_sales_outstanding,
        case
            when reached_months.source_load_id > aggregated.source_load_id then reached_months.source_load_id
            else aggregated.source_load_id
        end as source_load_id
    from aggregated
    left join reached_months
        on aggregated.month_start_date = reached_months.month_start_date

)

select * from final
