-- ML labels: one row per customer per as-of month, looking forward from the month end (kept apart
-- from the features on purpose). Horizons come from reference.config_label_horizons; a label is
-- null when its window runs past the data horizon and nothing decided it in the observed part.
-- Indexed by month: the ML step reads the labels one as-of month at a time (ADR 0097).
{{ config(indexes=[{'columns': ['as_of_month']}]) }}
with

customer_months as (

    select * from {{ ref('fct_customer_months') }}

),

bills as (

    select * from {{ ref('fct_bills') }}

),

horizons as (

    select * from {{ ref('config_label_horizons') }}

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
    where bills.payment_status = 'written_off'
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
        settings.theft_horizon_months
    from monthly as as_of
    cross join settings
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
