-- Calendar: one row per day from var('calendar_start_date') to var('calendar_end_date').
with

days as (

    select * from {{ ref('int_calendar_days_spined') }}

),

final as (

    select
        days.date_day,
        days.month_start_date,
        days.month_end_date,
        cast({{ dbt.date_trunc('year', 'days.date_day') }} as date) as year_start_date,
        cast({{ dbt.date_trunc('quarter', 'days.date_day') }} as date) as quarter_start_date,
        cast(extract(year from days.date_day) as integer) as calendar_year,
        cast(extract(month from days.date_day) as integer) as calendar_month,
        cast(extract(day from days.date_day) as integer) as day_of_month,
        -- extract(year|month|day) is ANSI SQL; the ISO day of week (Monday = 1) is counted from a known
        -- Monday, as engines name that date part differently
        cast(
            mod({{ gridcredit.days_between("cast('1900-01-01' as date)", 'days.date_day') }}, 7) + 1 as integer
        ) as iso_day_of_week,
        days.date_day = days.month_end_date as is_month_end
    from days

)

select * from final
