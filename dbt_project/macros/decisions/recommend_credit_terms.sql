{#-
    The credit policy applied to customer-months: one `select` returning, per customer per month, the
    matching policy rule, the recommended terms (after the good-standing incentive and the analysts'
    overrides), their amounts, the approval level they need, the exposure at default and the expected
    loss, and why, in plain words.

    One definition for two callers: the model int_credit_terms_recommended (the current policy) and
    `gridcredit policy simulate`, which compiles this macro with an alternative policy table in place of
    `policy_terms` (so a what-if can never drift from the real rules).

    Arguments are relations (ref(...) or a schema-qualified name):
      statuses         one row per customer-month (int_credit_list_statuses_evaluated)
      overrides        analysts' overrides in force per customer-month (int_credit_overrides_in_force)
      policy_terms     the credit terms table (seed credit_policy_terms, or a what-if copy)
      payment_cycles   seed credit_payment_cycles
      approval_levels  seed credit_approval_levels
      parameters       one row of named parameters (int_credit_policy_parameters_pivoted)
      loss_assumptions seed expected_loss_assumptions
      where            optional filter on the statuses (e.g. one month for a what-if)

    Rule matching: the customer's policy segment must equal the rule's; every non-empty selector (final
    grade, customer type, tariff, industry) must equal the customer's. Of the matching rules the most
    specific wins: more selectors first, then grade, customer type, tariff, industry, then the rule id.
-#}
{% macro recommend_credit_terms(
    statuses,
    overrides,
    policy_terms,
    payment_cycles,
    approval_levels,
    parameters,
    loss_assumptions,
    where=none
) -%}
    {{ return(adapter.dispatch('recommend_credit_terms', 'gridcredit')(
        statuses, overrides, policy_terms, payment_cycles, approval_levels, parameters, loss_assumptions, where
    )) }}
{%- endmacro %}

{% macro default__recommend_credit_terms(
    statuses,
    overrides,
    policy_terms,
    payment_cycles,
    approval_levels,
    parameters,
    loss_assumptions,
    where
) -%}
{%- set selectors = ['final_grade', 'customer_type', 'tariff_code', 'industry_code'] -%}
with

statuses as (

    select * from {{ statuses }}
    {%- if where %}
    where {{ where }}
    {%- endif %}

),

overrides as (

    select * from {{ overrides }}

),

policy_terms as (

    select * from {{ policy_terms }}

),

payment_cycles as (

    select * from {{ payment_cycles }}

),

approval_levels as (

    select * from {{ approval_levels }}

),

parameters as (

    select * from {{ parameters }}

),

loss_assumptions as (

    select * from {{ loss_assumptions }}

),

matching_rules as (

    select
        statuses.customer_id,
        statuses.month_start_date,
        policy_terms.policy_rule_id,
        policy_terms.rule_note,
        policy_terms.payment_cycle,
        policy_terms.prepayment_rate,
        policy_terms.deposit_months,
        policy_terms.credit_period_days,
        policy_terms.credit_limit_bill_multiple,
        row_number() over (
            partition by statuses.customer_id, statuses.month_start_date
            order by
                (
                    {%- for selector in selectors %}
                    case when policy_terms.{{ selector }} is not null then 1 else 0 end
                    {{- ' +' if not loop.last }}
                    {%- endfor %}
                ) desc,
                {%- for selector in selectors %}
                case when policy_terms.{{ selector }} is not null then 1 else 0 end desc,
                {%- endfor %}
                policy_terms.policy_rule_id
        ) as match_rank
    from statuses
    inner join policy_terms
        on
            statuses.policy_segment = policy_terms.policy_segment
            and (policy_terms.final_grade is null or policy_terms.final_grade = statuses.decision_grade)
            and (policy_terms.customer_type is null or policy_terms.customer_type = statuses.customer_type)
            and (policy_terms.tariff_code is null or policy_terms.tariff_code = statuses.tariff_code)
            and (policy_terms.industry_code is null or policy_terms.industry_code = statuses.industry_code)

),

policy_applied as (

    select
        statuses.customer_id,
        statuses.month_start_date,
        statuses.month_end_date,
        statuses.customer_type,
        statuses.policy_segment,
        statuses.decision_grade,
        statuses.is_good_standing,
        statuses.list_reason,
        statuses.bills_issued_to_date,
        statuses.expected_monthly_bill_amount,
        statuses.outstanding_amount,
        statuses.advance_balance_amount,
        statuses.bad_12m_probability,
        matching_rules.policy_rule_id,
        matching_rules.rule_note,
        matching_rules.payment_cycle as policy_payment_cycle,
        matching_rules.prepayment_rate as policy_prepayment_rate,
        matching_rules.deposit_months as policy_deposit_months,
        matching_rules.credit_period_days as policy_credit_period_days,
        matching_rules.credit_limit_bill_multiple
    from statuses
    left join matching_rules
        on
            statuses.customer_id = matching_rules.customer_id
            and statuses.month_start_date = matching_rules.month_start_date
            and matching_rules.match_rank = 1

),

incentives_applied as (

    select
        policy_applied.*,
        parameters.limit_rounding_amount,
        parameters.minimum_credit_limit_amount,
        parameters.disconnection_lag_months,
        parameters.new_customer_advance_bills,
        parameters.good_standing_extra_credit_period_days,
        coalesce(policy_applied.is_good_standing, false) and policy_applied.policy_segment = 'standard'
            as has_good_standing_incentive,
        policy_applied.policy_credit_period_days
        + case
            when coalesce(policy_applied.is_good_standing, false) and policy_applied.policy_segment = 'standard'
                then parameters.good_standing_extra_credit_period_days
            else 0
        end as incentive_credit_period_days,
        case
            when
                coalesce(policy_applied.is_good_standing, false)
                and policy_applied.policy_segment = 'standard'
                and parameters.good_standing_waives_deposit = 1
                then 0
            else policy_applied.policy_deposit_months
        end as incentive_deposit_months
    from policy_applied
    cross join parameters

),

overrides_applied as (

    select
        incentives_applied.*,
        overrides.override_ids,
        overrides.override_summary,
        overrides.credit_limit_amount as override_credit_limit_amount,
        overrides.override_ids is not null as has_override,
        coalesce(overrides.payment_cycle, incentives_applied.policy_payment_cycle) as payment_cycle,
        coalesce(overrides.prepayment_rate, incentives_applied.policy_prepayment_rate) as prepayment_rate,
        coalesce(overrides.deposit_months, incentives_applied.incentive_deposit_months) as deposit_months,
        coalesce(overrides.credit_period_days, incentives_applied.incentive_credit_period_days) as credit_period_days
    from incentives_applied
    left join overrides
        on
            incentives_applied.customer_id = overrides.customer_id
            and incentives_applied.month_start_date = overrides.month_start_date

),

amounts as (

    select
        overrides_applied.*,
        payment_cycles.cycle_months,
        loss_assumptions.loss_given_default_rate,
        {{ gridcredit.round_up_to(
            'overrides_applied.expected_monthly_bill_amount * overrides_applied.deposit_months',
            'overrides_applied.limit_rounding_amount'
        ) }} as deposit_amount,
        round(overrides_applied.expected_monthly_bill_amount * overrides_applied.prepayment_rate, 2)
            as prepayment_amount,
        coalesce(
            overrides_applied.override_credit_limit_amount,
            case
                when
                    overrides_applied.expected_monthly_bill_amount * (1 - overrides_applied.prepayment_rate)
                    * overrides_applied.credit_limit_bill_multiple <= 0
                    then 0
                else greatest(
                    {{ gridcredit.round_up_to(
                        'overrides_applied.expected_monthly_bill_amount * (1 - overrides_applied.prepayment_rate)'
                        ~ ' * overrides_applied.credit_limit_bill_multiple',
                        'overrides_applied.limit_rounding_amount'
                    ) }},
                    overrides_applied.minimum_credit_limit_amount
                )
            end
        ) as credit_limit_amount,
        case
            when overrides_applied.policy_segment = 'new_customer'
                then greatest(overrides_applied.new_customer_advance_bills - overrides_applied.bills_issued_to_date, 0)
            else 0
        end as advance_bills_required
    from overrides_applied
    left join payment_cycles
        on overrides_applied.payment_cycle = payment_cycles.payment_cycle
    left join loss_assumptions
        on overrides_applied.customer_type = loss_assumptions.customer_type

),

approval_candidates as (

    select
        amounts.customer_id,
        amounts.month_start_date,
        approval_levels.approval_level,
        approval_levels.approver,
        approval_levels.level_rank,
        row_number() over (
            partition by amounts.customer_id, amounts.month_start_date
            order by approval_levels.level_rank
        ) as approval_rank
    from amounts
    inner join approval_levels
        on
            (
                approval_levels.max_credit_period_days is null
                or amounts.credit_period_days <= approval_levels.max_credit_period_days
            )
            and (
                approval_levels.max_credit_limit_amount is null
                or amounts.credit_limit_amount <= approval_levels.max_credit_limit_amount
            )

),

automatic_level as (

    select
        approval_levels.max_credit_period_days as auto_max_credit_period_days,
        approval_levels.max_credit_limit_amount as auto_max_credit_limit_amount
    from approval_levels
    where approval_levels.level_rank = 1

),

risk as (

    select
        amounts.*,
        approval_candidates.approval_level,
        approval_candidates.approver,
        approval_candidates.level_rank as approval_level_rank,
        automatic_level.auto_max_credit_period_days,
        automatic_level.auto_max_credit_limit_amount,
        greatest(
            coalesce(amounts.outstanding_amount, 0)
            + amounts.expected_monthly_bill_amount * (1 - amounts.prepayment_rate)
            * (amounts.cycle_months + amounts.credit_period_days / 30.0 + amounts.disconnection_lag_months)
            - amounts.deposit_amount
            - coalesce(amounts.advance_balance_amount, 0),
            0
        ) as exposure_at_default_amount
    from amounts
    left join approval_candidates
        on
            amounts.customer_id = approval_candidates.customer_id
            and amounts.month_start_date = approval_candidates.month_start_date
            and approval_candidates.approval_rank = 1
    cross join automatic_level

),

final as (

    select
        risk.customer_id,
        risk.month_start_date,
        risk.policy_segment,
        risk.decision_grade,
        risk.policy_rule_id,
        risk.rule_note,
        risk.payment_cycle,
        cast(risk.prepayment_rate as numeric(5, 4)) as prepayment_rate,
        cast(risk.deposit_months as numeric(6, 2)) as deposit_months,
        cast(risk.deposit_amount as numeric(18, 2)) as deposit_amount,
        cast(risk.credit_period_days as integer) as credit_period_days,
        cast(risk.credit_limit_amount as numeric(18, 2)) as credit_limit_amount,
        cast(risk.prepayment_amount as numeric(18, 2)) as prepayment_amount,
        cast(risk.advance_bills_required as integer) as advance_bills_required,
        risk.approval_level,
        risk.approver,
        coalesce(risk.approval_level_rank > 1, true) as is_approval_required,
        risk.has_good_standing_incentive,
        risk.has_override,
        risk.override_ids,
        cast(risk.exposure_at_default_amount as numeric(18, 2)) as exposure_at_default_amount,
        cast(risk.loss_given_default_rate as numeric(5, 4)) as loss_given_default_rate,
        cast(
            risk.bad_12m_probability * risk.exposure_at_default_amount * risk.loss_given_default_rate
            as numeric(18, 2)
        ) as expected_loss_amount,
        case
            when risk.policy_rule_id is null
                then 'No policy rule matches this customer: check credit_policy_terms'
            else
                case risk.policy_segment
                    when 'blacklist' then 'Blacklist (' || coalesce(risk.list_reason, 'listed') || ')'
                    when 'watch_list' then 'Watch list (' || coalesce(risk.list_reason, 'listed') || ')'
                    when 'new_customer'
                        then 'New customer (' || cast(risk.bills_issued_to_date as {{ dbt.type_string() }})
                        || ' of the first ' || cast(cast(risk.new_customer_advance_bills as integer) as {{ dbt.type_string() }})
                        || ' bills issued): the next ' || cast(risk.advance_bills_required as {{ dbt.type_string() }})
                        || ' paid in advance'
                    else 'Grade ' || risk.decision_grade
                end
                || ': rule ' || risk.policy_rule_id || ' (' || risk.rule_note || ')'
                || '; limit ' || {{ gridcredit.format_amount('risk.credit_limit_amount') }}
                || case
                    when risk.override_credit_limit_amount is not null then ' (set by override)'
                    else ' = ' || cast(risk.credit_limit_bill_multiple as {{ dbt.type_string() }})
                        || ' x expected bill ' || {{ gridcredit.format_amount('risk.expected_monthly_bill_amount') }}
                        || case
                            when risk.prepayment_rate > 0
                                then ' on the ' || {{ gridcredit.format_rate('1 - risk.prepayment_rate') }} || ' not prepaid'
                            else ''
                        end
                end
                || case
                    when risk.has_good_standing_incentive
                        then '; good standing: credit period +'
                        || cast(cast(risk.good_standing_extra_credit_period_days as integer) as {{ dbt.type_string() }})
                        || ' days'
                        || case when risk.incentive_deposit_months = 0 and risk.policy_deposit_months > 0
                            then ', deposit waived' else '' end
                    else ''
                end
                || case
                    when risk.has_override then '; analyst override ' || risk.override_summary
                    else ''
                end
                || case
                    when risk.approval_level is null
                        then '; no approval level covers these terms: check credit_approval_levels'
                    when risk.approval_level_rank > 1
                        then '; needs approval by ' || risk.approver || ' ('
                        || case
                            when risk.credit_period_days > risk.auto_max_credit_period_days
                                then 'credit period ' || cast(risk.credit_period_days as {{ dbt.type_string() }})
                                || ' days over ' || cast(risk.auto_max_credit_period_days as {{ dbt.type_string() }})
                            else ''
                        end
                        || case
                            when risk.credit_period_days > risk.auto_max_credit_period_days
                                and risk.credit_limit_amount > risk.auto_max_credit_limit_amount
                                then ', '
                            else ''
                        end
                        || case
                            when risk.credit_limit_amount > risk.auto_max_credit_limit_amount
                                then 'limit ' || {{ gridcredit.format_amount('risk.credit_limit_amount') }}
                                || ' over ' || {{ gridcredit.format_amount('risk.auto_max_credit_limit_amount') }}
                            else ''
                        end
                        || ')'
                    else ''
                end
        end as terms_reason
    from risk

)

select * from final
{%- endmacro %}
