-- The credit decision of every customer each month (授信决策): one row per open customer per scored
-- month with the grade, the risk figures, the expected bill, the recommended terms and the approval
-- they need, and what changed since last month and why, in plain words.
-- Incremental by scored month (docs/decisions/0104): rebuilt from the first month the terms rebuilt (a
-- new load, new scores or other overrides in force); "since last month" reads the month before it.
{%- set reprocess_from = gridcredit.incremental_in_decision_chain(ref('int_credit_terms_recommended')) %}
with

statuses as (

    select * from {{ ref('int_credit_list_statuses_evaluated') }}
    where {{ gridcredit.reprocess_filter('month_start_date', reprocess_from, lookback_months=1) }}

),

terms as (

    select * from {{ ref('int_credit_terms_recommended') }}
    where {{ gridcredit.reprocess_filter('month_start_date', reprocess_from, lookback_months=1) }}

),

parameters as (

    select * from {{ ref('int_credit_policy_parameters_pivoted') }}

),

joined as (

    select
        statuses.customer_id,
        statuses.month_start_date,
        statuses.month_end_date,
        statuses.region_code,
        statuses.industry_code,
        statuses.customer_type,
        statuses.settlement_method,
        statuses.tariff_code,
        statuses.payment_method,
        coalesce(statuses.value_tier, 'unranked') as value_tier,
        statuses.enterprise_id,
        statuses.tenure_months,
        statuses.bills_issued_to_date,
        statuses.score,
        statuses.model_grade,
        statuses.final_grade,
        terms.decision_grade,
        statuses.grade_basis,
        statuses.grade_override_reason,
        statuses.score_reasons,
        statuses.bad_12m_probability,
        statuses.arrears_probability,
        statuses.warning_level,
        statuses.warning_reasons,
        statuses.theft_suspicion_score,
        statuses.theft_suspicion_rank,
        statuses.is_on_inspection_list,
        statuses.theft_suspicion_reasons,
        statuses.forecast_kwh_month_1,
        statuses.forecast_kwh_month_2,
        statuses.forecast_kwh_month_3,
        statuses.forecast_bill_amount_month_1,
        statuses.forecast_bill_amount_month_2,
        statuses.forecast_bill_amount_month_3,
        statuses.expected_monthly_bill_amount,
        statuses.expected_bill_basis,
        statuses.outstanding_amount,
        statuses.arrears_amount,
        statuses.days_past_due,
        statuses.advance_balance_amount,
        statuses.deposit_held_amount,
        statuses.is_good_standing,
        terms.policy_segment,
        statuses.credit_list_status,
        statuses.list_reason,
        terms.policy_rule_id,
        terms.payment_cycle,
        terms.prepayment_rate,
        terms.prepayment_amount,
        terms.deposit_months,
        terms.deposit_amount,
        terms.credit_period_days,
        terms.credit_limit_amount,
        terms.advance_bills_required,
        terms.approval_level,
        terms.approver,
        terms.is_approval_required,
        terms.has_good_standing_incentive,
        terms.has_override,
        terms.override_ids,
        terms.exposure_at_default_amount,
        terms.loss_given_default_rate,
        terms.expected_loss_amount,
        terms.terms_reason,
        terms.source_load_id,
        terms.scored_at,
        terms.overrides_revision
    from statuses
    inner join terms
        on
            statuses.customer_id = terms.customer_id
            and statuses.month_start_date = terms.month_start_date

),

with_previous as (

    select
        joined.*,
        {%- for column in [
            'month_start_date', 'score', 'decision_grade', 'policy_segment', 'credit_list_status',
            'expected_monthly_bill_amount', 'payment_cycle', 'prepayment_rate', 'deposit_months',
            'deposit_amount', 'credit_period_days', 'credit_limit_amount', 'approval_level', 'override_ids',
        ] %}
        lag(joined.{{ column }}) over customer_history as previous_{{ column }},
        {%- endfor %}
        lag(joined.policy_rule_id) over customer_history as previous_policy_rule_id
    from joined
    window customer_history as (partition by joined.customer_id order by joined.month_start_date)

),

changes as (

    select
        with_previous.*,
        -- noqa: disable=LT02,LT05
        -- material: any change of cycle, prepayment share or credit period; a limit or deposit that
        -- moved from or to zero, or by at least terms_change_materiality_rate and terms_change_min_amount
        with_previous.previous_month_start_date is not null
        and (
            with_previous.payment_cycle is distinct from with_previous.previous_payment_cycle
            or with_previous.prepayment_rate is distinct from with_previous.previous_prepayment_rate
            or with_previous.credit_period_days is distinct from with_previous.previous_credit_period_days
            {%- for amount in ['deposit_amount', 'credit_limit_amount'] %}
                or (
                    with_previous.{{ amount }} is distinct from with_previous.previous_{{ amount }}
                    and (
                        coalesce(with_previous.{{ amount }}, 0) = 0
                        or coalesce(with_previous.previous_{{ amount }}, 0) = 0
                        or abs(with_previous.{{ amount }} - with_previous.previous_{{ amount }}) >= greatest(
                            parameters.terms_change_materiality_rate * with_previous.previous_{{ amount }},
                            parameters.terms_change_min_amount
                        )
                    )
                )
            {%- endfor %}
        ) as has_terms_change,
        concat_ws(
            ', ',
            case when with_previous.credit_limit_amount is distinct from with_previous.previous_credit_limit_amount
                    then 'credit limit '
                        || case when with_previous.credit_limit_amount > with_previous.previous_credit_limit_amount
                                then 'up'
                            else 'down'
                        end
                        || ' from ' || {{ gridcredit.format_amount('with_previous.previous_credit_limit_amount') }}
                        || ' to ' || {{ gridcredit.format_amount('with_previous.credit_limit_amount') }}
            end,
            case when with_previous.credit_period_days is distinct from with_previous.previous_credit_period_days
                    then 'credit period from '
                        || {{ dbt.cast('with_previous.previous_credit_period_days', dbt.type_string()) }}
                        || ' to ' || {{ dbt.cast('with_previous.credit_period_days', dbt.type_string()) }} || ' days'
            end,
            case when with_previous.payment_cycle is distinct from with_previous.previous_payment_cycle
                    then 'payment cycle from ' || with_previous.previous_payment_cycle
                        || ' to ' || with_previous.payment_cycle
            end,
            case when with_previous.prepayment_rate is distinct from with_previous.previous_prepayment_rate
                    then 'prepayment from ' || {{ gridcredit.format_rate('with_previous.previous_prepayment_rate') }}
                        || ' to ' || {{ gridcredit.format_rate('with_previous.prepayment_rate') }}
            end,
            case when with_previous.deposit_amount is distinct from with_previous.previous_deposit_amount
                    then 'deposit from ' || {{ gridcredit.format_amount('with_previous.previous_deposit_amount') }}
                        || ' to ' || {{ gridcredit.format_amount('with_previous.deposit_amount') }}
            end,
            case when with_previous.approval_level is distinct from with_previous.previous_approval_level
                    then case when with_previous.is_approval_required
                                then 'now needs approval by ' || with_previous.approver
                            else 'back within automatic approval'
                        end
            end
        ) as terms_changes,
        concat_ws(
            '; ',
            case when with_previous.decision_grade is distinct from with_previous.previous_decision_grade
                    then 'grade '
                        || case when {{ gridcredit.grade_rank('with_previous.decision_grade') }}
                                < {{ gridcredit.grade_rank('with_previous.previous_decision_grade') }} then 'up'
                            else 'down'
                        end
                        || ' from ' || with_previous.previous_decision_grade || ' to ' || with_previous.decision_grade
                        || case
                            when with_previous.grade_basis = 'override' then ' (analyst override)'
                            when with_previous.score is not null and with_previous.previous_score is not null
                                then ' (score '
                                    || {{ dbt.cast('round(with_previous.previous_score, 0)', dbt.type_string()) }}
                                    || ' to ' || {{ dbt.cast('round(with_previous.score, 0)', dbt.type_string()) }}
                                    || coalesce(': ' || with_previous.score_reasons, '') || ')'
                            else ''
                        end
            end,
            case when with_previous.credit_list_status is distinct from with_previous.previous_credit_list_status
                    then case
                            when with_previous.credit_list_status = 'none'
                                then 'left the ' || replace(with_previous.previous_credit_list_status, '_', ' ')
                                    || case when with_previous.previous_credit_list_status = 'good_standing' then ''
                                        else ' (no new reason within the exit period)'
                                    end
                            else 'entered the ' || replace(with_previous.credit_list_status, '_', ' ')
                                || coalesce(' (' || with_previous.list_reason || ')', '')
                        end
            end,
            case when with_previous.policy_segment is distinct from with_previous.previous_policy_segment
                    and with_previous.previous_policy_segment = 'new_customer'
                    then 'no longer a new customer ('
                        || {{ dbt.cast('with_previous.bills_issued_to_date', dbt.type_string()) }}
                        || ' bills issued)'
            end,
            case when with_previous.expected_monthly_bill_amount is distinct from with_previous.previous_expected_monthly_bill_amount
                    and with_previous.previous_month_start_date is not null
                    and (
                        with_previous.credit_limit_amount is distinct from with_previous.previous_credit_limit_amount
                        or with_previous.deposit_amount is distinct from with_previous.previous_deposit_amount
                        or abs(
                            with_previous.expected_monthly_bill_amount
                            - with_previous.previous_expected_monthly_bill_amount
                        )
                        >= parameters.terms_change_materiality_rate
                        * with_previous.previous_expected_monthly_bill_amount
                    )
                    then 'expected monthly bill '
                        || case when with_previous.expected_monthly_bill_amount
                                > with_previous.previous_expected_monthly_bill_amount
                                then 'up'
                            else 'down'
                        end
                        || ' from '
                        || {{ gridcredit.format_amount('with_previous.previous_expected_monthly_bill_amount') }}
                        || ' to ' || {{ gridcredit.format_amount('with_previous.expected_monthly_bill_amount') }}
                        || ' (' || with_previous.expected_bill_basis || ')'
            end,
            case when with_previous.override_ids is distinct from with_previous.previous_override_ids
                    then case
                            when with_previous.override_ids is null
                                then 'override ' || with_previous.previous_override_ids || ' ended'
                            when with_previous.previous_override_ids is null
                                then 'override ' || with_previous.override_ids || ' in force'
                            else 'overrides now ' || with_previous.override_ids
                        end
            end,
            case when with_previous.policy_rule_id is distinct from with_previous.previous_policy_rule_id
                    then 'policy rule ' || coalesce(with_previous.previous_policy_rule_id, 'none')
                        || ' replaced by ' || coalesce(with_previous.policy_rule_id, 'none')
            end
        ) as change_causes
        -- noqa: enable=LT02,LT05
    from with_previous
    cross join parameters

),

final as (

    select
        {{ gridcredit.surrogate_key(['changes.customer_id', 'changes.month_start_date']) }} as credit_decision_id,
        changes.customer_id,
        changes.month_start_date,
        changes.month_end_date,
        changes.region_code,
        changes.industry_code,
        changes.customer_type,
        changes.settlement_method,
        changes.tariff_code,
        changes.payment_method,
        changes.value_tier,
        changes.enterprise_id,
        cast(changes.tenure_months as integer) as tenure_months,
        cast(changes.bills_issued_to_date as integer) as bills_issued_to_date,
        cast(changes.score as integer) as score,
        changes.model_grade,
        changes.final_grade,
        changes.decision_grade,
        changes.grade_basis,
        changes.grade_override_reason,
        changes.score_reasons,
        {{ dbt.cast('changes.bad_12m_probability', 'double precision') }} as bad_12m_probability,
        {{ dbt.cast('changes.arrears_probability', 'double precision') }} as arrears_probability,
        changes.warning_level,
        changes.warning_reasons,
        {{ dbt.cast('changes.theft_suspicion_score', 'double precision') }} as theft_suspicion_score,
        cast(changes.theft_suspicion_rank as integer) as theft_suspicion_rank,
        changes.is_on_inspection_list,
        changes.theft_suspicion_reasons,
        cast(changes.forecast_kwh_month_1 as numeric(18, 2)) as forecast_kwh_month_1,
        cast(changes.forecast_kwh_month_2 as numeric(18, 2)) as forecast_kwh_month_2,
        cast(changes.forecast_kwh_month_3 as numeric(18, 2)) as forecast_kwh_month_3,
        changes.forecast_bill_amount_month_1,
        changes.forecast_bill_amount_month_2,
        changes.forecast_bill_amount_month_3,
        changes.expected_monthly_bill_amount,
        changes.expected_bill_basis,
        changes.outstanding_amount,
        changes.arrears_amount,
        cast(changes.days_past_due as integer) as days_past_due,
        changes.advance_balance_amount,
        changes.deposit_held_amount,
        changes.policy_segment,
        changes.credit_list_status,
        changes.list_reason,
        changes.policy_rule_id,
        changes.payment_cycle,
        changes.prepayment_rate,
        changes.prepayment_amount,
        changes.deposit_months,
        changes.deposit_amount,
        changes.credit_period_days,
        changes.credit_limit_amount,
        changes.advance_bills_required,
        changes.approval_level,
        changes.approver,
        changes.is_approval_required,
        changes.has_good_standing_incentive,
        changes.has_override,
        changes.override_ids,
        changes.exposure_at_default_amount,
        changes.loss_given_default_rate,
        changes.expected_loss_amount,
        changes.previous_decision_grade,
        changes.previous_payment_cycle,
        changes.previous_prepayment_rate,
        changes.previous_deposit_amount,
        changes.previous_credit_period_days,
        changes.previous_credit_limit_amount,
        changes.previous_month_start_date is null as is_first_decision,
        coalesce(changes.has_terms_change, false) as has_terms_change,
        case
            when changes.previous_month_start_date is null then 'First recommendation'
            when changes.terms_changes = '' and changes.change_causes = '' then 'No change'
            when changes.terms_changes = '' then 'Terms unchanged; ' || changes.change_causes
            when changes.change_causes = ''
                then 'Changed: ' || changes.terms_changes || ' (the policy applied to this month''s figures)'
            else 'Changed: ' || changes.terms_changes || '. Because: ' || changes.change_causes
        end as change_summary,
        changes.terms_reason,
        changes.source_load_id,
        changes.scored_at,
        changes.overrides_revision
    from changes
    where {{ gridcredit.reprocess_filter('changes.month_start_date', reprocess_from) }}

)

select * from final
