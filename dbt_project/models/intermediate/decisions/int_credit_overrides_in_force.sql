-- The analysts' overrides in force at each decision date (the month end): one row per customer per
-- month with at least one override in force. When several overrides in force set the same field, the
-- most recently recorded one wins for that field; an override is in force from its first day to its
-- expiry, or to the day before an `expire` event ended it early.
{%- set fields = [
    'final_grade',
    'credit_limit_amount',
    'credit_period_days',
    'payment_cycle',
    'prepayment_rate',
    'deposit_months',
] %}
with

override_events as (

    select * from {{ ref('stg_decisions__credit_overrides') }}

),

decision_months as (

    select * from {{ ref('int_credit_decision_inputs_joined') }}

),

added as (

    select * from override_events
    where event_type = 'add'

),

expired as (

    select * from override_events
    where event_type = 'expire'

),

override_periods as (

    select
        added.override_id,
        added.customer_id,
        added.created_at,
        added.override_event_id,
        added.reason,
        added.created_by,
        added.final_grade,
        added.credit_limit_amount,
        added.credit_period_days,
        added.payment_cycle,
        added.prepayment_rate,
        added.deposit_months,
        concat_ws(
            ', ',
            case when added.final_grade is not null then 'grade ' || added.final_grade end,
            case when added.credit_limit_amount is not null
                    then 'limit ' || {{ gridcredit.format_amount('added.credit_limit_amount') }}
            end,
            case when added.credit_period_days is not null
                    then 'credit period ' || {{ dbt.cast('added.credit_period_days', dbt.type_string()) }} || ' days'
            end,
            case when added.payment_cycle is not null then 'payment cycle ' || added.payment_cycle end,
            case when added.prepayment_rate is not null
                    then 'prepayment ' || {{ gridcredit.format_rate('added.prepayment_rate') }}
            end,
            case when added.deposit_months is not null
                    then 'deposit ' || {{ dbt.cast('added.deposit_months', dbt.type_string()) }} || ' months'
            end
        ) as override_terms,
        added.effective_from_date,
        case
            when expired.effective_from_date is null then added.expires_on_date
            else least(added.expires_on_date, {{ gridcredit.add_days('expired.effective_from_date', -1) }})
        end as last_day_in_force
    from added
    left join expired
        on added.override_id = expired.override_id

),

in_force as (

    -- noqa: disable=LT02
    select
        decision_months.month_start_date,
        override_periods.*,
        {%- for field in fields %}
        row_number() over (
            partition by
                override_periods.customer_id,
                decision_months.month_start_date,
                case when override_periods.{{ field }} is null then 1 else 0 end
            order by override_periods.override_event_id desc
        ) as {{ field }}_recency{{ ',' if not loop.last }}
        {%- endfor %}
    -- noqa: enable=LT02
    from override_periods
    inner join decision_months
        on
            override_periods.customer_id = decision_months.customer_id
            and override_periods.effective_from_date <= decision_months.month_end_date
            and override_periods.last_day_in_force >= decision_months.month_end_date

),

final as (

    select
        in_force.customer_id,
        in_force.month_start_date,
        {%- for field in fields %}
        max(case when in_force.{{ field }}_recency = 1 then in_force.{{ field }} end) as {{ field }},
        {%- endfor %}
        -- noqa: disable=LT02
        {{ dbt.listagg('in_force.override_id', "', '", 'order by in_force.override_id') }} as override_ids,
        {{ dbt.listagg(
            "in_force.override_id || ' (' || in_force.override_terms || ') by ' || in_force.created_by || ' until ' || "
            ~ dbt.cast('in_force.last_day_in_force', dbt.type_string())
            ~ " || ': ' || in_force.reason",
            "'; '",
            'order by in_force.override_id'
        ) }} as override_summary
        -- noqa: enable=LT02
    from in_force
    group by in_force.customer_id, in_force.month_start_date

)

select * from final
