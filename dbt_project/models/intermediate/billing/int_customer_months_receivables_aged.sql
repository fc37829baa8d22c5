-- What each customer owed at each month end, as known then: one row per customer per month.
--
-- Running totals per customer: receivable bills issued, bills past their due date (and more than
-- 30/60/90 days past it), and credits (payments net of reversals as they happened, credit notes).
-- Payments go to the oldest due bills first, so the overdue amount is the part of the overdue
-- bills the credits do not cover: greatest(overdue billed - credited, 0); the same for each aging
-- threshold. Days past due: age of the oldest bill not covered by credits plus the tolerance, found
-- on one sorted line of bill ends and month-end credit positions (no customer x bill join).
-- Amounts dated before a customer's first row count in that first row.
-- Incremental by month (docs/decisions/0011, 0017): the running totals of the rebuilt months start
-- from this model's own row of the month before the first rebuilt one (up to date: the ledger has
-- nothing newer for it); only entries of the rebuilt months are summed, and only bills above the
-- lowest credit position of the rebuilt months can be the oldest unpaid one.
{%- set reprocess_from = gridcredit.incremental_by_month() %}
{%- set carries = reprocess_from not in ('all', 'none') %}
{%- set measures = [
    ('billed_month', 'receivable_billed_amount'),
    ('overdue_over_0_days_month', 'overdue_billed_amount'),
    ('overdue_over_30_days_month', 'overdue_over_30_days_billed_amount'),
    ('overdue_over_60_days_month', 'overdue_over_60_days_billed_amount'),
    ('overdue_over_90_days_month', 'overdue_over_90_days_billed_amount'),
] %}
{%- set running_measures = ['credited_amount'] + measures | map(attribute=1) | list %}
{#- An entry belongs to a rebuilt month when its month is rebuilt or its customer's first month is
    (earlier entries count in the first month): greatest(entry month, first month) is a rebuilt
    month. Filtered on each scan, before the join and the sums (at 100k a filter on the greatest,
    after the join, put 33 M entry rows through it for about 1 M it kept). -#}
{%- set customers_starting_in_rebuilt_months -%}
select first_months.customer_id from first_months
where {{ gridcredit.reprocess_filter('first_months.first_month', reprocess_from) }}
{%- endset %}
with

spine as (

    select * from {{ ref('int_customer_months_spined') }}

),

bills as (

    select * from {{ ref('int_bills_sequenced') }}

),

credits as (

    select * from {{ ref('int_credits_unioned') }}

),

all_bills as (

    select * from {{ ref('stg_billing__bills') }}

),

policy as (

    select * from {{ ref('config_arrears_policy') }}

),

first_months as (

    select
        spine.customer_id,
        min(spine.month_start_date) as first_month
    from spine
    group by spine.customer_id

),

{% if carries -%}
-- running totals up to the month before the first rebuilt month, from this model's own rows
carried as (

    select
        previous.customer_id,
        {%- for measure in running_measures %}
        previous.{{ measure }}_to_date{{ ',' if not loop.last }}
        {%- endfor %}
    from {{ this }} as previous
    where previous.month_start_date = {{ gridcredit.add_months("cast('" ~ reprocess_from ~ "' as date)", -1) }}

),
{%- endif %}

entries as (

    {%- for month_column, measure in measures %}
    select
        bills.customer_id,
        bills.{{ month_column }} as entry_month,
        '{{ measure }}' as measure,
        bills.bill_amount as amount
    from bills
    where {{ gridcredit.reprocess_filter_or_customers(
        'bills.' ~ month_column, reprocess_from, 'bills.customer_id', customers_starting_in_rebuilt_months
    ) }}
    union all
    {%- endfor %}
    select
        credits.customer_id,
        credits.credit_month as entry_month,
        'credited_amount' as measure,
        credits.credit_amount as amount
    from credits
    where {{ gridcredit.reprocess_filter_or_customers(
        'credits.credit_month', reprocess_from, 'credits.customer_id', customers_starting_in_rebuilt_months
    ) }}
    union all
    select
        credits.customer_id,
        credits.credit_month as entry_month,
        'collected_amount' as measure,
        credits.credit_amount as amount
    from credits
    where
        credits.credit_kind in ('payment', 'reversal')
        and {{ gridcredit.reprocess_filter_or_customers(
            'credits.credit_month', reprocess_from, 'credits.customer_id', customers_starting_in_rebuilt_months
        ) }}
    {%- for measure, column in [('billed_amount', 'bill_amount'), ('billed_kwh', 'billed_kwh')] %}
    union all
    select
        all_bills.customer_id,
        {{ gridcredit.month_start('all_bills.issue_date') }} as entry_month,
        '{{ measure }}' as measure,
        all_bills.{{ column }} as amount
    from all_bills
    where
        all_bills.bill_status <> 'cancelled'
        and {{ gridcredit.reprocess_filter_or_customers(
            gridcredit.month_start('all_bills.issue_date'), reprocess_from,
            'all_bills.customer_id', customers_starting_in_rebuilt_months
        ) }}
    {%- endfor %}

),

monthly_entries as (

    select
        entries.customer_id,
        greatest(entries.entry_month, first_months.first_month) as month_start_date,
        {%- for measure in ['billed_amount', 'billed_kwh', 'collected_amount', 'credited_amount'] + measures | map(attribute=1) | list %}
        sum(case when entries.measure = '{{ measure }}' then entries.amount else 0 end) as {{ measure }},
        {%- endfor %}
        count(*) as entry_count
    from entries
    inner join first_months
        on entries.customer_id = first_months.customer_id
    group by entries.customer_id, greatest(entries.entry_month, first_months.first_month)

),

bills_due as (

    select
        bills.customer_id,
        bills.due_month as month_start_date,
        count(*) as bills_due_count,
        sum(case when bills.is_paid_by_due_date then 1 else 0 end) as bills_paid_on_time_count
    from bills
    where {{ gridcredit.reprocess_filter('bills.due_month', reprocess_from) }}
    group by bills.customer_id, bills.due_month

),

cumulated as (

    select
        spine.customer_id,
        spine.month_start_date,
        spine.month_end_date,
        coalesce(monthly_entries.billed_amount, 0) as billed_amount,
        coalesce(monthly_entries.billed_kwh, 0) as billed_kwh,
        coalesce(monthly_entries.collected_amount, 0) as collected_amount,
        spine.source_load_id,
        coalesce(bills_due.bills_due_count, 0) as bills_due_count,
        {%- for measure in running_measures %}
        {%- set carried_amount = 'coalesce(carried.' ~ measure ~ '_to_date, 0)' if carries else '0' %}
        sum(coalesce(monthly_entries.{{ measure }}, 0)) over customer_history + {{ carried_amount }}
            as {{ measure }}_to_date,
        {%- endfor %}
        coalesce(bills_due.bills_paid_on_time_count, 0) as bills_paid_on_time_count
    from spine
    left join monthly_entries
        on
            spine.customer_id = monthly_entries.customer_id
            and spine.month_start_date = monthly_entries.month_start_date
    left join bills_due
        on
            spine.customer_id = bills_due.customer_id
            and spine.month_start_date = bills_due.month_start_date
    {%- if carries %}
    left join carried
        on spine.customer_id = carried.customer_id
    {%- endif %}
    where {{ gridcredit.reprocess_filter('spine.month_start_date', reprocess_from) }}
    window customer_history as (
        partition by spine.customer_id
        order by spine.month_start_date
        rows between unbounded preceding and current row
    )

),

{% if carries -%}
lowest_positions as (

    select
        cumulated.customer_id,
        min(cumulated.credited_amount_to_date) + max(policy.arrears_tolerance_amount) as position_amount
    from cumulated
    cross join policy
    group by cumulated.customer_id

),
{%- endif %}

-- bill ends and month-end credit positions on one line per customer, highest first: for a month
-- end, the bills above its position are those not covered; the oldest due among them is the
-- running minimum of due dates (at equal positions the month comes first: a bill exactly covered
-- is paid)
positions as (

    select
        cumulated.customer_id,
        cumulated.month_start_date,
        cumulated.credited_amount_to_date + policy.arrears_tolerance_amount as position_amount,
        0 as position_order,
        cast(null as date) as due_date
    from cumulated
    cross join policy

    union all

    select
        bills.customer_id,
        cast(null as date) as month_start_date,
        bills.billed_through_amount as position_amount,
        1 as position_order,
        bills.due_date
    from bills
    {%- if carries %}
    -- a bill at or below every rebuilt month's position is covered in all of them
    inner join lowest_positions
        on
            bills.customer_id = lowest_positions.customer_id
            and bills.billed_through_amount > lowest_positions.position_amount
    {%- endif %}

),

oldest_unpaid as (

    select
        positions.customer_id,
        positions.month_start_date,
        positions.position_order,
        min(positions.due_date) over (
            partition by positions.customer_id
            order by positions.position_amount desc, positions.position_order asc, positions.month_start_date asc
            rows between unbounded preceding and current row
        ) as oldest_unpaid_due_date
    from positions

),

final as (

    select
        cumulated.customer_id,
        cumulated.month_start_date,
        cumulated.billed_amount,
        cumulated.billed_kwh,
        cumulated.collected_amount,
        greatest(cumulated.receivable_billed_amount_to_date - cumulated.credited_amount_to_date, 0)
            as receivable_balance_amount,
        greatest(cumulated.credited_amount_to_date - cumulated.receivable_billed_amount_to_date, 0)
            as credit_balance_amount,
        greatest(cumulated.overdue_billed_amount_to_date - cumulated.credited_amount_to_date, 0)
            as arrears_amount,
        {%- for days in [30, 60, 90] %}
        greatest(cumulated.overdue_over_{{ days }}_days_billed_amount_to_date - cumulated.credited_amount_to_date, 0)
            as arrears_over_{{ days }}_days_amount,
        {%- endfor %}
        greatest(cumulated.overdue_billed_amount_to_date - cumulated.credited_amount_to_date, 0)
        > policy.arrears_tolerance_amount as is_in_arrears,
        case
            when
                greatest(cumulated.overdue_billed_amount_to_date - cumulated.credited_amount_to_date, 0)
                > policy.arrears_tolerance_amount
                then {{ gridcredit.days_between('oldest_unpaid.oldest_unpaid_due_date', 'cumulated.month_end_date') }}
            else 0
        end as days_past_due,
        cumulated.bills_due_count,
        cumulated.bills_paid_on_time_count,
        {%- for measure in running_measures %}
        cumulated.{{ measure }}_to_date,
        {%- endfor %}
        cumulated.source_load_id
    from cumulated
    inner join oldest_unpaid
        on
            cumulated.customer_id = oldest_unpaid.customer_id
            and cumulated.month_start_date = oldest_unpaid.month_start_date
            and oldest_unpaid.position_order = 0
    cross join policy

)

select * from final
