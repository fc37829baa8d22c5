-- Where each customer stands in the credit policy at each decision month: the grade decisions use
-- (an analyst's grade override, else the scoring step's final grade, else C), the good-standing,
-- watch and black lists (守信激励, 失信惩罚) with the reason in plain words, the new-customer rule, and
-- so the policy segment whose terms apply. The lists look at the customer's whole history in the
-- customer-month mart (a theft two years ago counts), not only at the scored months.
-- One row per open customer per scored month.
-- Incremental by scored month (docs/decisions/0104): rebuilt from the first month with a new load, new
-- scores or other overrides in force; the event history comes from int_customer_months_credit_history.
{%- set reprocess_from = gridcredit.incremental_in_decision_chain(ref('int_credit_decision_inputs_joined')) %}
{%- set events = [
    'theft', 'legal_event', 'serious_arrears', 'very_long_arrears', 'dishonest_debtor', 'payment_blemish',
] %}
with

inputs as (

    select * from {{ ref('int_credit_decision_inputs_joined') }}
    where {{ gridcredit.reprocess_filter('month_start_date', reprocess_from) }}

),

overrides as (

    select * from {{ ref('int_credit_overrides_in_force') }}
    where {{ gridcredit.reprocess_filter('month_start_date', reprocess_from) }}

),

override_months as (

    select * from {{ ref('int_credit_override_months') }}

),

parameters as (

    select * from {{ ref('int_credit_policy_parameters_pivoted') }}

),

histories as (

    select * from {{ ref('int_customer_months_credit_history') }}
    where {{ gridcredit.reprocess_filter('month_start_date', reprocess_from) }}

),

months_since as (

    select
        inputs.*,
        histories.is_dishonest_debtor,
        histories.last_theft_month,
        histories.last_legal_event_month,
        histories.last_serious_arrears_month,
        histories.last_very_long_arrears_month,
        histories.last_dishonest_debtor_month,
        histories.last_payment_blemish_month,
        {%- for event in events %}
        {{ gridcredit.months_between('histories.last_' ~ event ~ '_month', 'inputs.month_start_date') }}
            as months_since_{{ event }},
        {%- endfor %}
        overrides.final_grade as override_grade,
        override_months.overrides_revision
    from inputs
    inner join histories
        on
            inputs.customer_id = histories.customer_id
            and inputs.month_start_date = histories.month_start_date
    left join overrides
        on
            inputs.customer_id = overrides.customer_id
            and inputs.month_start_date = overrides.month_start_date
    left join override_months
        on inputs.month_start_date = override_months.month_start_date

),

flagged as (

    select
        months_since.*,
        coalesce(months_since.override_grade, months_since.final_grade, 'C') as decision_grade,
        case
            when months_since.override_grade is not null then 'override'
            when months_since.final_grade is not null then 'score'
            else 'no_score'
        end as grade_basis,
        months_since.bills_issued_to_date < parameters.new_customer_advance_bills as is_new_customer,
        coalesce(months_since.months_since_theft < parameters.blacklist_theft_months, false) as has_recent_theft,
        coalesce(months_since.is_dishonest_debtor, false) as is_on_dishonest_debtor_list,
        coalesce(months_since.months_since_very_long_arrears < parameters.blacklist_exit_clean_months, false)
        or coalesce(months_since.months_since_dishonest_debtor < parameters.blacklist_exit_clean_months, false)
            as has_recent_blacklist_event,
        coalesce(months_since.months_since_serious_arrears < parameters.watch_list_exit_clean_months, false)
            as has_recent_serious_arrears,
        coalesce(months_since.months_since_legal_event < parameters.watch_list_lawsuit_months, false)
            as has_recent_legal_event,
        {{ gridcredit.grade_rank("coalesce(months_since.override_grade, months_since.final_grade, 'C')") }}
        <= parameters.good_standing_max_grade_rank as has_good_standing_grade,
        months_since.tenure_months >= parameters.good_standing_min_tenure_months as has_good_standing_tenure,
        case
            when months_since.months_since_payment_blemish is null
                then months_since.tenure_months >= parameters.good_standing_clean_months
            else months_since.months_since_payment_blemish >= parameters.good_standing_clean_months
        end as has_clean_payment_record,
        parameters.watch_list_days_past_due,
        parameters.blacklist_days_past_due,
        parameters.good_standing_clean_months
    from months_since
    cross join parameters

),

listed as (

    select
        flagged.*,
        flagged.has_recent_theft or flagged.has_recent_blacklist_event as is_blacklisted,
        not (flagged.has_recent_theft or flagged.has_recent_blacklist_event)
        and (flagged.has_recent_serious_arrears or flagged.has_recent_legal_event) as is_watch_listed,
        not (flagged.has_recent_theft or flagged.has_recent_blacklist_event)
        and not (flagged.has_recent_serious_arrears or flagged.has_recent_legal_event)
        and flagged.has_good_standing_grade
        and flagged.has_good_standing_tenure
        and flagged.has_clean_payment_record as is_good_standing
    from flagged

),

final as (

    select
        listed.*,
        case
            when listed.is_blacklisted then 'blacklist'
            when listed.is_new_customer then 'new_customer'
            when listed.is_watch_listed then 'watch_list'
            else 'standard'
        end as policy_segment,
        case
            when listed.is_blacklisted then 'blacklist'
            when listed.is_watch_listed then 'watch_list'
            when listed.is_good_standing then 'good_standing'
            else 'none'
        end as credit_list_status,
        -- noqa: disable=LT02,LT05
        case
            when listed.is_blacklisted then concat_ws(
                '; ',
                case when listed.has_recent_theft
                    then 'theft confirmed in ' || {{ gridcredit.format_month('listed.last_theft_month') }} end,
                case when listed.is_on_dishonest_debtor_list then 'on the dishonest-debtor list'
                    when coalesce(listed.months_since_dishonest_debtor < listed.months_since_very_long_arrears, true)
                        and listed.last_dishonest_debtor_month is not null
                        and listed.has_recent_blacklist_event
                        then 'on the dishonest-debtor list until '
                        || {{ gridcredit.format_month('listed.last_dishonest_debtor_month') }} end,
                case when listed.days_past_due > listed.blacklist_days_past_due
                    then {{ dbt.cast('listed.days_past_due', dbt.type_string()) }} || ' days past due (over '
                    || {{ dbt.cast('cast(listed.blacklist_days_past_due as integer)', dbt.type_string()) }} || ')'
                    when listed.last_very_long_arrears_month is not null
                        and coalesce(listed.months_since_very_long_arrears < listed.months_since_dishonest_debtor, true)
                        and listed.has_recent_blacklist_event
                        then 'over ' || {{ dbt.cast('cast(listed.blacklist_days_past_due as integer)', dbt.type_string()) }}
                        || ' days past due in ' || {{ gridcredit.format_month('listed.last_very_long_arrears_month') }}
                end
            )
            when listed.is_watch_listed then concat_ws(
                '; ',
                case when listed.days_past_due > listed.watch_list_days_past_due
                    then {{ dbt.cast('listed.days_past_due', dbt.type_string()) }} || ' days past due (over '
                    || {{ dbt.cast('cast(listed.watch_list_days_past_due as integer)', dbt.type_string()) }} || ')'
                    when listed.has_recent_serious_arrears
                        then 'over ' || {{ dbt.cast('cast(listed.watch_list_days_past_due as integer)', dbt.type_string()) }}
                        || ' days past due in ' || {{ gridcredit.format_month('listed.last_serious_arrears_month') }}
                end,
                case when listed.has_recent_legal_event
                    then 'lawsuit or legal event in ' || {{ gridcredit.format_month('listed.last_legal_event_month') }} end
            )
            when listed.is_good_standing
                then 'grade ' || listed.decision_grade || ', a customer for '
                || {{ dbt.cast('listed.tenure_months', dbt.type_string()) }} || ' months, no arrears and every bill on time for '
                || {{ dbt.cast('cast(listed.good_standing_clean_months as integer)', dbt.type_string()) }} || ' months'
        end as list_reason
        -- noqa: enable=LT02,LT05
    from listed

)

select * from final
