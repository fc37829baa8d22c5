-- One row per calendar day from var('calendar_start_date') to var('calendar_end_date').
with

days as (

    {{ gridcredit.calendar_spine(var('calendar_start_date'), var('calendar_end_date')) }}

),

final as (

    select
        days.date_day,
        {{ gridcredit.month_start('days.date_day') }} as month_start_date,
        {{ gridcredit.month_end('days.date_day') }} as month_end_date
    from days

)

select * from final
