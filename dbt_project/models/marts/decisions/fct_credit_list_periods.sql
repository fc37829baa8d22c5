-- The good-standing list, the watch list and the blacklist over time (守信激励, 失信惩罚): one row per
-- customer per uninterrupted period on one list, with its entry and exit dates (the month ends of the
-- first decision on the list and of the first decision off it; no exit date while still on it) and
-- the reason it entered. A customer already listed in the first decision month is flagged: its real
-- entry may be earlier.
with

decisions as (

    select * from {{ ref('fct_credit_decisions') }}

),

bounds as (

    select
        min(decisions.month_start_date) as first_decision_month,
        max(decisions.month_start_date) as last_decision_month
    from decisions

),

sequenced as (

    select
        decisions.customer_id,
        decisions.month_start_date,
        decisions.month_end_date,
        decisions.credit_list_status,
        decisions.list_reason,
        lag(decisions.credit_list_status) over customer_history as previous_list_status,
        {{ gridcredit.months_between(
            'lag(decisions.month_start_date) over customer_history', 'decisions.month_start_date'
        ) }} as months_since_previous_decision,
        lead(decisions.month_end_date) over customer_history as next_month_end_date
    from decisions
    window customer_history as (partition by decisions.customer_id order by decisions.month_start_date)

),

islands as (

    select
        sequenced.*,
        sum(
            case
                when sequenced.previous_list_status is distinct from sequenced.credit_list_status then 1
                when sequenced.months_since_previous_decision > 1 then 1
                else 0
            end
        ) over (
            partition by sequenced.customer_id
            order by sequenced.month_start_date
            rows between unbounded preceding and current row
        ) as period_number
    from sequenced

),

periods as (

    select
        islands.customer_id,
        islands.credit_list_status,
        islands.period_number,
        min(islands.month_start_date) as first_month_start_date,
        max(islands.month_start_date) as last_month_start_date,
        min(islands.month_end_date) as entry_date,
        count(*) as months_on_list
    from islands
    where islands.credit_list_status <> 'none'
    group by islands.customer_id, islands.credit_list_status, islands.period_number

),

final as (

    select
        {{ gridcredit.surrogate_key([
            'periods.customer_id', 'periods.credit_list_status', 'periods.first_month_start_date'
        ]) }} as credit_list_period_id,
        periods.customer_id,
        periods.credit_list_status as list_name,
        periods.entry_date,
        case
            when periods.last_month_start_date < bounds.last_decision_month then last_months.next_month_end_date
        end as exit_date,
        periods.months_on_list,
        periods.last_month_start_date = bounds.last_decision_month as is_current,
        periods.first_month_start_date = bounds.first_decision_month as is_listed_before_first_decision,
        first_months.list_reason as entry_reason,
        last_months.list_reason as latest_reason
    from periods
    cross join bounds
    inner join islands as first_months
        on
            periods.customer_id = first_months.customer_id
            and periods.first_month_start_date = first_months.month_start_date
    inner join islands as last_months
        on
            periods.customer_id = last_months.customer_id
            and periods.last_month_start_date = last_months.month_start_date

)

select * from final
