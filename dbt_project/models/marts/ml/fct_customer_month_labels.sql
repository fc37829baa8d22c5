-- ML labels: one row per customer per as-of month, looking forward from the month end (kept apart
-- from the features on purpose). Horizons come from reference.config_label_horizons; a label is
-- null when its window runs past the data horizon and nothing decided it in the observed part.
-- Indexed by month: the ML step reads the labels one as-of month at a time (ADR 0097); by
-- source_load_id: reprocess_from_month() reads its newest value (ADR 0109).
--
-- Incremental by as-of month (docs/decisions/0108): a load touching months from m on changes the
-- labels of the as-of months whose windows reach m, those from m minus the longest horizon on (and
-- the data horizon moves, which decides the labels whose windows run past it: the same months). No
-- `meta.rebuilt_by_month`: those months start before the ledger's, so the pipeline's scoped tests
-- (ADR 0021) would skip some of them; this model's tests read every row.
-- `meta.build_area_catch_up: false`: each run rebuilds 13 as-of months, so the pipeline does not copy
-- the months the last run rebuilt into the build area; dbt rebuilds one month more (ADR 0114).
{{ config(
    materialized='incremental',
    unique_key='as_of_month',
    incremental_strategy='delete+insert',
    on_schema_change='fail',
    meta={'build_area_catch_up': false},
    indexes=[
        {'columns': ['as_of_month']}, {'columns': ['customer_id', 'as_of_month']}, {'columns': ['source_load_id']},
        {'columns': ['customer_month_id'], 'unique': True},
    ],
) }}
{%- set reprocess_from = gridcredit.reprocess_from_month(ref('int_load_ledger_months')) %}
{%- set months_read = gridcredit.reprocess_filter('customer_months.month_start_date', reprocess_from)
    if reprocess_from in ('all', 'none')
    else 'customer_months.month_start_date >= ' ~ gridcredit.add_months(
        "cast('" ~ reprocess_from ~ "' as date)", '-rebuilt_window.lookback_months'
    ) %}
with

horizons as (

    select * from {{ ref('config_label_horizons') }}

),

rebuilt_window as (

    select max(horizons.horizon_months) as lookback_months
    from horizons

),

-- the rebuilt as-of months and the months their windows read
customer_months as (

    select customer_months.*
    from {{ ref('fct_customer_months') }} as customer_months
    cross join rebuilt_window
    where {{ months_read }}

),

ledger as (

    select * from {{ ref('int_load_ledger_months') }}

),

bills as (

    select * from {{ ref('stg_billing__bills') }}

),

policy as (

    select * from {{ ref('config_arrears_policy') }}

),

settings as (

    select
        max(case when horizons.label_name = 'is_bad_within_12_months' then horizons.horizon_months end)
            as bad_horizon_months,
        max(case when horizons.label_name = 'has_confirmed_theft_within_horizon' then horizons.horizon_months end)
            as theft_horizon_months,
        max(policy.bad_days_past_due) as bad_days_past_due
    from horizons
    cross join policy

),

write_offs as (

    select
        bills.customer_id,
        {{ gridcredit.month_start('bills.due_date') }} as month_start_date,
        count(*) as written_off_bill_count
    from bills
    -- written off by the billing system, whatever was paid later: a later payment must not change an
    -- earlier label (and the labels are rebuilt only as far back as their windows reach, ADR 0108)
    where bills.bill_status = 'written_off' and bills.bill_amount > 0
    group by bills.customer_id, {{ gridcredit.month_start('bills.due_date') }}

),

monthly as (

    select
        customer_months.customer_id,
        customer_months.month_start_date,
        customer_months.is_in_arrears,
        lead(customer_months.is_in_arrears) over customer_future as is_in_arrears_next_month,
        sum(
            case
                when
                    customer_months.days_past_due > settings.bad_days_past_due
                    or coalesce(write_offs.written_off_bill_count, 0) > 0
                    then 1
                else 0
            end
        ) over customer_history as bad_months_to_date,
        sum(customer_months.confirmed_theft_count) over customer_history as confirmed_thefts_to_date,
        max(customer_months.month_start_date) over () as horizon_month
    from customer_months
    cross join settings
    left join write_offs
        on
            customer_months.customer_id = write_offs.customer_id
            and customer_months.month_start_date = write_offs.month_start_date
    window
        customer_future as (partition by customer_months.customer_id order by customer_months.month_start_date),
        customer_history as (
            partition by customer_months.customer_id
            order by customer_months.month_start_date
            rows between unbounded preceding and current row
        )

),

-- a window (as-of month, as-of month + h] holds a bad month when the running count grew between
-- its ends; the far end is capped at the data horizon (then the label is only known if it is true)
final as (

    select
        {{ gridcredit.surrogate_key(['as_of.customer_id', 'as_of.month_start_date']) }} as customer_month_id,
        as_of.customer_id,
        as_of.month_start_date as as_of_month,
        as_of.is_in_arrears_next_month,
        case
            when bad_window_end.bad_months_to_date > as_of.bad_months_to_date then true
            when {{ gridcredit.add_months('as_of.month_start_date', 'settings.bad_horizon_months') }} > as_of.horizon_month
                then null
            else false
        end as is_bad_within_12_months,
        case
            when theft_window_end.confirmed_thefts_to_date > as_of.confirmed_thefts_to_date then true
            when {{ gridcredit.add_months('as_of.month_start_date', 'settings.theft_horizon_months') }} > as_of.horizon_month
                then null
            else false
        end as has_confirmed_theft_within_horizon,
        settings.bad_horizon_months,
        settings.theft_horizon_months,
        -- the newest load that can change the row: one touching the end of its longest window or earlier
        window_ledger.source_load_id
    from monthly as as_of
    cross join settings
    cross join rebuilt_window
    inner join ledger as window_ledger
        on
            window_ledger.month_start_date = least(
                {{ gridcredit.add_months('as_of.month_start_date', 'rebuilt_window.lookback_months') }},
                as_of.horizon_month
            )
    inner join monthly as bad_window_end
        on
            as_of.customer_id = bad_window_end.customer_id
            and bad_window_end.month_start_date = least(
                {{ gridcredit.add_months('as_of.month_start_date', 'settings.bad_horizon_months') }},
                as_of.horizon_month
            )
    inner join monthly as theft_window_end
        on
            as_of.customer_id = theft_window_end.customer_id
            and theft_window_end.month_start_date = least(
                {{ gridcredit.add_months('as_of.month_start_date', 'settings.theft_horizon_months') }},
                as_of.horizon_month
            )

)

select * from final
