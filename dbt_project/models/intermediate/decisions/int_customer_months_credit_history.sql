-- What a credit decision needs from the customer's history, as of each month end: bills issued to
-- date, the trailing bill and kWh sums that price the expected bill, and the last month of each event
-- the credit lists look back to (theft, legal event, serious and very long arrears, dishonest-debtor
-- listing, a payment blemish). One row per customer per month.
-- Incremental by month (docs/decisions/0011, 0104): the running values of the rebuilt months start
-- from this model's own row of the month before the first rebuilt one, and the trailing sums read 11
-- months before it, so an increment reads one month of history, not all of it (the decision models
-- read it instead of a window over the whole customer-month mart).
{%- set reprocess_from = gridcredit.incremental_by_month() %}
{%- set incremental_months = reprocess_from not in ('all', 'none') %}
{%- set events = ['theft', 'legal_event', 'serious_arrears', 'very_long_arrears', 'dishonest_debtor', 'payment_blemish'] %}
with

customer_months as (

    select * from {{ ref('fct_customer_months') }}
    where {{ gridcredit.reprocess_filter('month_start_date', reprocess_from, lookback_months=11) }}

),

parameters as (

    select * from {{ ref('int_credit_policy_parameters_pivoted') }}

),

{% if incremental_months -%}
-- running values up to the month before the first rebuilt month, from this model's own rows
carried as (

    select
        previous.customer_id,
        previous.bills_issued_to_date,
        {%- for event in events %}
        previous.last_{{ event }}_month{{ ',' if not loop.last }}
        {%- endfor %}
    from {{ this }} as previous
    where previous.month_start_date = {{ gridcredit.add_months("cast('" ~ reprocess_from ~ "' as date)", -1) }}

),
{%- endif %}

flagged as (

    select
        customer_months.customer_id,
        customer_months.month_start_date,
        customer_months.tenure_months,
        customer_months.billed_amount,
        customer_months.billed_kwh,
        customer_months.is_dishonest_debtor,
        customer_months.source_load_id,
        -- the lookback months feed the trailing sums only; the carried row already counts them
        {% if incremental_months -%}
        customer_months.month_start_date >= cast('{{ reprocess_from }}' as date)
        {%- else -%}
        true
        {%- endif %} as is_rebuilt,
        case when customer_months.confirmed_theft_count > 0 then customer_months.month_start_date end as theft_month,
        case when customer_months.legal_event_count > 0 then customer_months.month_start_date end as legal_event_month,
        case
            when customer_months.days_past_due > parameters.watch_list_days_past_due
                then customer_months.month_start_date
        end as serious_arrears_month,
        case
            when customer_months.days_past_due > parameters.blacklist_days_past_due
                then customer_months.month_start_date
        end as very_long_arrears_month,
        case when customer_months.is_dishonest_debtor then customer_months.month_start_date end as dishonest_debtor_month,
        case
            when customer_months.is_in_arrears or not coalesce(customer_months.is_paid_on_time, true)
                then customer_months.month_start_date
        end as payment_blemish_month
    from customer_months
    cross join parameters

),

windowed as (

    select
        flagged.*,
        -- bills before the data horizon: one a month since the account opened (tenure at the first row)
        first_value(flagged.tenure_months) over customer_history as first_tenure_months,
        sum(case when flagged.is_rebuilt and flagged.billed_amount > 0 then 1 else 0 end) over customer_history
            as bills_since_carried,
        {%- for event in events %}
        max(flagged.{{ event }}_month) over customer_history as last_{{ event }}_month_since_carried,
        {%- endfor %}
        avg(flagged.billed_amount) over last_3_months as recent_monthly_bill_amount,
        sum(flagged.billed_amount) over last_12_months as billed_12m_amount,
        sum(flagged.billed_kwh) over last_12_months as billed_12m_kwh
    from flagged
    window
        customer_history as (
            partition by flagged.customer_id
            order by flagged.month_start_date
            rows between unbounded preceding and current row
        ),
        last_3_months as (
            partition by flagged.customer_id
            order by flagged.month_start_date
            rows between 2 preceding and current row
        ),
        last_12_months as (
            partition by flagged.customer_id
            order by flagged.month_start_date
            rows between 11 preceding and current row
        )

),

final as (

    select
        windowed.customer_id,
        windowed.month_start_date,
        {%- if incremental_months %}
        cast(coalesce(carried.bills_issued_to_date, windowed.first_tenure_months) + windowed.bills_since_carried as integer)
            as bills_issued_to_date,
        {%- for event in events %}
        greatest(carried.last_{{ event }}_month, windowed.last_{{ event }}_month_since_carried) as last_{{ event }}_month,
        {%- endfor %}
        {%- else %}
        cast(windowed.first_tenure_months + windowed.bills_since_carried as integer) as bills_issued_to_date,
        {%- for event in events %}
        windowed.last_{{ event }}_month_since_carried as last_{{ event }}_month,
        {%- endfor %}
        {%- endif %}
        windowed.recent_monthly_bill_amount,
        windowed.billed_12m_amount,
        windowed.billed_12m_kwh,
        windowed.is_dishonest_debtor,
        windowed.source_load_id
    from windowed
    {%- if incremental_months %}
    left join carried
        on windowed.customer_id = carried.customer_id
    {%- endif %}
    where windowed.is_rebuilt

)

select * from final
