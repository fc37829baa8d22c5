-- Monthly event counts on the customer-month spine, with the running totals that need the whole
-- history: confirmed thefts to date, deposit balance, and whether the customer's enterprise is on
-- the dishonest-debtor list at the month end (listed more often than removed). One row per
-- customer per month.
with

spine as (

    select * from {{ ref('int_customer_months_spined') }}

),

events as (

    select * from {{ ref('int_customer_events_aggregated_to_months') }}

),

first_months as (

    select
        spine.customer_id,
        min(spine.month_start_date) as first_month
    from spine
    group by spine.customer_id

),

-- events dated before a customer's first row count in that row
events_clamped as (

    select
        events.customer_id,
        greatest(events.month_start_date, first_months.first_month) as month_start_date,
        sum(events.dunning_notice_count) as dunning_notice_count,
        sum(events.disconnection_count) as disconnection_count,
        sum(events.reconnection_count) as reconnection_count,
        sum(events.inspection_count) as inspection_count,
        sum(events.confirmed_theft_count) as confirmed_theft_count,
        sum(events.violation_count) as violation_count,
        sum(events.recovered_amount) as recovered_amount,
        sum(events.meter_event_count) as meter_event_count,
        sum(events.tamper_event_count) as tamper_event_count,
        sum(events.supplier_lawsuit_count) as supplier_lawsuit_count,
        sum(events.tax_violation_count) as tax_violation_count,
        sum(events.dishonest_debtor_listed_count) as dishonest_debtor_listed_count,
        sum(events.dishonest_debtor_removed_count) as dishonest_debtor_removed_count,
        sum(events.deposit_change_amount) as deposit_change_amount,
        max(events.prepaid_balance_amount) as prepaid_balance_amount
    from events
    inner join first_months
        on events.customer_id = first_months.customer_id
    group by events.customer_id, greatest(events.month_start_date, first_months.first_month)

),

joined as (

    select
        spine.customer_id,
        spine.month_start_date,
        coalesce(events_clamped.dunning_notice_count, 0) as dunning_notice_count,
        coalesce(events_clamped.disconnection_count, 0) as disconnection_count,
        coalesce(events_clamped.reconnection_count, 0) as reconnection_count,
        coalesce(events_clamped.inspection_count, 0) as inspection_count,
        coalesce(events_clamped.confirmed_theft_count, 0) as confirmed_theft_count,
        coalesce(events_clamped.violation_count, 0) as violation_count,
        coalesce(events_clamped.recovered_amount, 0) as recovered_amount,
        coalesce(events_clamped.meter_event_count, 0) as meter_event_count,
        coalesce(events_clamped.tamper_event_count, 0) as tamper_event_count,
        coalesce(events_clamped.supplier_lawsuit_count, 0)
        + coalesce(events_clamped.tax_violation_count, 0) as legal_event_count,
        coalesce(events_clamped.dishonest_debtor_listed_count, 0) as dishonest_debtor_listed_count,
        coalesce(events_clamped.dishonest_debtor_removed_count, 0) as dishonest_debtor_removed_count,
        coalesce(events_clamped.deposit_change_amount, 0) as deposit_change_amount,
        events_clamped.prepaid_balance_amount
    from spine
    left join events_clamped
        on
            spine.customer_id = events_clamped.customer_id
            and spine.month_start_date = events_clamped.month_start_date

),

final as (

    select
        joined.customer_id,
        joined.month_start_date,
        joined.dunning_notice_count,
        joined.disconnection_count,
        joined.reconnection_count,
        joined.inspection_count,
        joined.confirmed_theft_count,
        joined.violation_count,
        joined.recovered_amount,
        joined.meter_event_count,
        joined.tamper_event_count,
        joined.legal_event_count,
        joined.prepaid_balance_amount,
        sum(joined.confirmed_theft_count) over customer_history as confirmed_theft_count_to_date,
        sum(joined.deposit_change_amount) over customer_history as deposit_balance_amount,
        sum(joined.dishonest_debtor_listed_count - joined.dishonest_debtor_removed_count) over customer_history
        > 0 as is_dishonest_debtor
    from joined
    window customer_history as (
        partition by joined.customer_id
        order by joined.month_start_date
        rows between unbounded preceding and current row
    )

)

select * from final
