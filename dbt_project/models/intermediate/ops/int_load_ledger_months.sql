-- The months of the warehouse's data horizon (first to last month any committed load covers),
-- each with the newest load that can change it. Balances are cumulative, so a load whose extract
-- starts in month m can change m and every later month; a load whose ledger row names no month
-- is taken to touch every month. Incremental models store source_load_id on their rows and rebuild
-- the months where the ledger's value is newer (macros/incremental/reprocess_from_month.sql).
with

ledger as (

    select * from {{ ref('stg_ops__load_ledger') }}

),

calendar as (

    select * from {{ ref('int_calendar_days_spined') }}

),

horizon as (

    select
        min(ledger.first_month) as first_month,
        max(coalesce(ledger.last_month, ledger.first_month)) as last_month
    from ledger

),

months as (

    select
        calendar.month_start_date,
        calendar.month_end_date
    from calendar
    inner join horizon
        on calendar.date_day between horizon.first_month and horizon.last_month
    where calendar.date_day = calendar.month_start_date

),

touching_loads as (

    select
        months.month_start_date,
        max(ledger.load_id) as source_load_id
    from months
    cross join horizon
    inner join ledger
        on coalesce(ledger.first_month, horizon.first_month) <= months.month_start_date
    group by months.month_start_date

),

final as (

    select
        months.month_start_date,
        months.month_end_date,
        touching_loads.source_load_id,
        months.month_start_date = (select max(horizon.last_month) from horizon) as is_latest_month
    from months
    inner join touching_loads
        on months.month_start_date = touching_loads.month_start_date

)

select * from final
