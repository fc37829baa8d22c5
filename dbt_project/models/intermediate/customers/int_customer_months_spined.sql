-- One row per customer per month, from the month the account opened (or the first month of the
-- data horizon) to the last month of the horizon. Closed accounts keep their rows after closing
-- (final bills and arrears outlive the account); is_account_open says whether the account was open
-- at some time in the month. Attributes are those in force at the month end (customer history).
-- Incremental by month like the marts it feeds (docs/decisions/0011, 0017): only the months a new
-- load can touch are rebuilt; a month's rows depend on nothing but that month.
{%- set reprocess_from = gridcredit.incremental_by_month() %}

with

months as (

    select * from {{ ref('int_load_ledger_months') }}
    where {{ gridcredit.reprocess_filter('month_start_date', reprocess_from) }}

),

history as (

    select * from {{ ref('int_customers_historised') }}

),

customers as (

    select * from {{ ref('stg_billing__customers') }}

),

spine as (

    select
        customers.customer_id,
        customers.open_date,
        customers.close_date,
        months.month_start_date,
        months.month_end_date,
        months.source_load_id
    from customers
    inner join months
        on customers.open_date <= months.month_end_date

),

final as (

    select
        {{ gridcredit.surrogate_key(['spine.customer_id', 'spine.month_start_date']) }} as customer_month_id,
        spine.customer_id,
        spine.month_start_date,
        spine.month_end_date,
        spine.source_load_id,
        history.customer_version_id,
        history.customer_kind,
        history.is_organisation,
        history.enterprise_id,
        history.region_code,
        history.industry_code,
        history.customer_type,
        history.voltage_level,
        history.tariff_code,
        history.settlement_method,
        history.payment_method,
        history.contract_capacity_kva,
        -- open and close dates stay out of the rows: a closing in a later month would change
        -- rows of earlier months, which an incremental build does not rebuild
        spine.close_date is null or spine.close_date >= spine.month_start_date as is_account_open,
        {%- set tenure = gridcredit.months_between('spine.open_date', 'spine.month_end_date') %}
        cast({{ tenure }} as integer) as tenure_months,
        -- days the account was open in the month: the days a reading is expected
        greatest(
            {{ gridcredit.days_between(
                'greatest(spine.open_date, spine.month_start_date)',
                'least(coalesce(spine.close_date, spine.month_end_date), spine.month_end_date)'
            ) }} + 1,
            0
        ) as open_days
    from spine
    inner join history
        on
            spine.customer_id = history.customer_id
            and spine.month_end_date >= history.valid_from
            and (history.valid_to is null or spine.month_end_date < history.valid_to)

)

select * from final
