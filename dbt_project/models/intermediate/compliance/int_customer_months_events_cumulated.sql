-- Monthly event counts on the customer-month spine, with the running totals that need the whole
-- history: confirmed thefts to date, deposit balance, and whether the customer's enterprise is on
-- the dishonest-debtor list at the month end (listed more often than removed). One row per
-- customer per month.
-- Incremental by month (docs/decisions/0011, 0017): the running totals of the rebuilt months start
-- from this model's own row of the month before the first rebuilt one (up to date: the ledger has
-- nothing newer for it), so history is not re-read.
{%- set reprocess_from = gridcredit.incremental_by_month() %}
with

spine as (

    select * from {{ ref('int_customer_months_spined') }}

),

events as (

    select * from {{ ref('int_customer_events_aggregated_to_months') }}

),

{% if reprocess_from not in ('all', 'none') -%}
-- running totals up to the month before the first rebuilt month, from this model's own rows
carried as (

    select
        previous.customer_id,
        previous.confirmed_theft_count_to_date,
        previous.deposit_balance_amount,
        previous.dishonest_debtor_net_listings
    from {{ this }} as previous
    where previous.month_start_date = {{ gridcredit.add_months("cast('" ~ reprocess_from ~ "' as date)", -1) }}

),
{%- endif %}

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
        events_clamped.prepaid_balance_amount,
        spine.source_load_id
    from spine
    left join events_clamped
        on
            spine.customer_id = events_clamped.customer_id
            and spine.month_start_date = events_clamped.month_start_date
    where {{ gridcredit.reprocess_filter('spine.month_start_date', reprocess_from) }}

),

cumulated as (

    select
        joined.*,
        sum(joined.confirmed_theft_count) over customer_history as theft_count_since_carried,
        sum(joined.deposit_change_amount) over customer_history as deposit_change_since_carried,
        sum(joined.dishonest_debtor_listed_count - joined.dishonest_debtor_removed_count) over customer_history
            as net_listings_since_carried
    from joined
    window customer_history as (
        partition by joined.customer_id
        order by joined.month_start_date
        rows between unbounded preceding and current row
    )

),

final as (

    select
        cumulated.customer_id,
        cumulated.month_start_date,
        cumulated.dunning_notice_count,
        cumulated.disconnection_count,
        cumulated.reconnection_count,
        cumulated.inspection_count,
        cumulated.confirmed_theft_count,
        cumulated.violation_count,
        cumulated.recovered_amount,
        cumulated.meter_event_count,
        cumulated.tamper_event_count,
        cumulated.legal_event_count,
        cumulated.prepaid_balance_amount,
        {%- if reprocess_from not in ('all', 'none') %}
        cumulated.theft_count_since_carried + coalesce(carried.confirmed_theft_count_to_date, 0)
            as confirmed_theft_count_to_date,
        cumulated.deposit_change_since_carried + coalesce(carried.deposit_balance_amount, 0)
            as deposit_balance_amount,
        cumulated.net_listings_since_carried + coalesce(carried.dishonest_debtor_net_listings, 0)
            as dishonest_debtor_net_listings,
        cumulated.net_listings_since_carried + coalesce(carried.dishonest_debtor_net_listings, 0) > 0
            as is_dishonest_debtor,
        {%- else %}
        cumulated.theft_count_since_carried as confirmed_theft_count_to_date,
        cumulated.deposit_change_since_carried as deposit_balance_amount,
        cumulated.net_listings_since_carried as dishonest_debtor_net_listings,
        cumulated.net_listings_since_carried > 0 as is_dishonest_debtor,
        {%- endif %}
        cumulated.source_load_id
    from cumulated
    {%- if reprocess_from not in ('all', 'none') %}
    left join carried
        on cumulated.customer_id = carried.customer_id
    {%- endif %}

)

select * from final
