-- Dated events counted per customer per month (months with at least one event): collection
-- actions, inspections and their outcomes, meter events (tamper signals: cover opened, reverse
-- flow, magnetic interference), legal events of the customer's enterprise, deposit movements, and
-- the last prepaid balance of the month.
with

collection_events as (

    select * from {{ ref('stg_billing__collection_events') }}

),

inspections as (

    select * from {{ ref('stg_inspection__inspections') }}

),

meter_events as (

    select * from {{ ref('stg_metering__meter_events') }}

),

meters as (

    select * from {{ ref('stg_billing__meters') }}

),

legal_events as (

    select * from {{ ref('stg_registry__legal_events') }}

),

customers as (

    select * from {{ ref('stg_billing__customers') }}

),

deposits as (

    select * from {{ ref('stg_billing__deposits') }}

),

prepaid_balances as (

    select * from {{ ref('stg_billing__prepaid_balances') }}

),

{%- set counters = [
    'dunning_notice_count', 'disconnection_count', 'reconnection_count',
    'inspection_count', 'confirmed_theft_count', 'violation_count', 'recovered_amount',
    'meter_event_count', 'tamper_event_count',
    'supplier_lawsuit_count', 'tax_violation_count', 'dishonest_debtor_listed_count',
    'dishonest_debtor_removed_count', 'deposit_change_amount',
] %}

events as (

    select
        collection_events.customer_id,
        collection_events.event_date,
        'dunning_notice_count' as counter,
        1 as amount
    from collection_events
    where collection_events.collection_event_type = 'dunning_notice'
    union all
    select
        collection_events.customer_id,
        collection_events.event_date,
        'disconnection_count' as counter,
        1 as amount
    from collection_events
    where collection_events.collection_event_type = 'disconnection'
    union all
    select
        collection_events.customer_id,
        collection_events.event_date,
        'reconnection_count' as counter,
        1 as amount
    from collection_events
    where collection_events.collection_event_type = 'reconnection'
    union all
    select
        inspections.customer_id,
        inspections.inspection_date as event_date,
        'inspection_count' as counter,
        1 as amount
    from inspections
    union all
    select
        inspections.customer_id,
        inspections.inspection_date as event_date,
        case inspections.inspection_outcome
            when 'theft_confirmed' then 'confirmed_theft_count'
            else 'violation_count'
        end as counter,
        1 as amount
    from inspections
    where inspections.inspection_outcome in ('theft_confirmed', 'violation')
    union all
    select
        inspections.customer_id,
        inspections.inspection_date as event_date,
        'recovered_amount' as counter,
        inspections.recovered_amount as amount
    from inspections
    union all
    select
        meters.customer_id,
        cast(meter_events.event_at as date) as event_date,
        case
            when meter_events.meter_event_type in ('cover_open', 'reverse_flow', 'magnetic_interference')
                then 'tamper_event_count'
            else 'meter_event_count'
        end as counter,
        1 as amount
    from meter_events
    inner join meters
        on meter_events.meter_id = meters.meter_id
    union all
    select
        customers.customer_id,
        legal_events.event_date,
        {{ dbt.concat(['legal_events.legal_event_type', "'_count'"]) }} as counter,
        1 as amount
    from legal_events
    inner join customers
        on legal_events.enterprise_id = customers.enterprise_id
    union all
    select
        deposits.customer_id,
        deposits.transaction_date as event_date,
        'deposit_change_amount' as counter,
        case when deposits.transaction_type = 'deposit' then 1 else -1 end * deposits.transaction_amount as amount
    from deposits

),

counted as (

    select
        events.customer_id,
        {{ gridcredit.month_start('events.event_date') }} as month_start_date,
        {%- for counter in counters %}
        sum(case when events.counter = '{{ counter }}' then events.amount else 0 end) as {{ counter }},
        {%- endfor %}
        count(*) as event_count
    from events
    group by events.customer_id, {{ gridcredit.month_start('events.event_date') }}

),

last_prepaid_balances as (

    select
        prepaid_balances.customer_id,
        {{ gridcredit.month_start('prepaid_balances.balance_date') }} as month_start_date,
        prepaid_balances.prepaid_balance_amount,
        row_number() over (
            partition by prepaid_balances.customer_id, {{ gridcredit.month_start('prepaid_balances.balance_date') }}
            order by prepaid_balances.balance_date desc
        ) as recency
    from prepaid_balances

),

month_end_prepaid_balances as (

    select
        last_prepaid_balances.customer_id,
        last_prepaid_balances.month_start_date,
        last_prepaid_balances.prepaid_balance_amount
    from last_prepaid_balances
    where last_prepaid_balances.recency = 1

),

final as (

    select
        coalesce(counted.customer_id, last_prepaid_balances.customer_id) as customer_id,
        coalesce(counted.month_start_date, last_prepaid_balances.month_start_date) as month_start_date,
        {%- for counter in counters %}
        coalesce(counted.{{ counter }}, 0) as {{ counter }},
        {%- endfor %}
        last_prepaid_balances.prepaid_balance_amount
    from counted
    full outer join month_end_prepaid_balances as last_prepaid_balances
        on
            counted.customer_id = last_prepaid_balances.customer_id
            and counted.month_start_date = last_prepaid_balances.month_start_date

)

select * from final
