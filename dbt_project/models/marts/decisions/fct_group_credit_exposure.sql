-- Customer groups against their credit limits (集团授信): one row per customer group per decision
-- month with the group's exposure (what its member accounts owe), its limit (the credit committee's,
-- else a share of the members' own limits), the worst and the exposure-weighted grade of the members,
-- and an alert when the group is over its limit although every member is within its own.
with

decisions as (

    select * from {{ ref('fct_credit_decisions') }}

),

members as (

    select * from {{ ref('bridge_customer_group_members') }}

),

group_limits as (

    select * from {{ ref('group_credit_limits') }}

),

parameters as (

    select * from {{ ref('int_credit_policy_parameters_pivoted') }}

),

member_accounts as (

    select
        members.customer_group_id,
        decisions.*,
        {{ gridcredit.grade_rank('decisions.decision_grade') }} as grade_rank,
        decisions.outstanding_amount > decisions.credit_limit_amount as is_over_own_limit
    from members
    inner join decisions
        on members.enterprise_id = decisions.enterprise_id

),

aggregated as (

    select
        member_accounts.customer_group_id,
        member_accounts.month_start_date,
        count(*) as member_account_count,
        count(distinct member_accounts.enterprise_id) as member_enterprise_count,
        sum(member_accounts.outstanding_amount) as group_exposure_amount,
        sum(member_accounts.arrears_amount) as group_arrears_amount,
        sum(member_accounts.exposure_at_default_amount) as group_exposure_at_default_amount,
        sum(member_accounts.expected_loss_amount) as group_expected_loss_amount,
        sum(member_accounts.credit_limit_amount) as member_credit_limit_amount,
        sum(case when member_accounts.is_over_own_limit then 1 else 0 end) as members_over_own_limit_count,
        max(member_accounts.grade_rank) as worst_grade_rank,
        coalesce(
            {{ gridcredit.safe_divide(
                'sum(member_accounts.grade_rank * member_accounts.outstanding_amount)',
                'sum(member_accounts.outstanding_amount)'
            ) }},
            avg(member_accounts.grade_rank)
        ) as exposure_weighted_grade_rank
    from member_accounts
    group by member_accounts.customer_group_id, member_accounts.month_start_date

),

limited as (

    select
        aggregated.*,
        group_limits.group_limit_amount is not null as has_committee_limit,
        coalesce(
            group_limits.group_limit_amount,
            {{ gridcredit.round_up_to(
                'aggregated.member_credit_limit_amount * parameters.group_limit_share_of_member_limits',
                'parameters.limit_rounding_amount'
            ) }}
        ) as group_limit_amount
    from aggregated
    cross join parameters
    left join group_limits
        on aggregated.customer_group_id = group_limits.group_id

),

final as (

    select
        {{ gridcredit.surrogate_key(['limited.customer_group_id', 'limited.month_start_date']) }}
            as group_credit_exposure_id,
        limited.customer_group_id,
        limited.month_start_date,
        limited.member_account_count,
        limited.member_enterprise_count,
        cast(limited.group_exposure_amount as numeric(18, 2)) as group_exposure_amount,
        cast(limited.group_arrears_amount as numeric(18, 2)) as group_arrears_amount,
        cast(limited.group_exposure_at_default_amount as numeric(18, 2)) as group_exposure_at_default_amount,
        cast(limited.group_expected_loss_amount as numeric(18, 2)) as group_expected_loss_amount,
        cast(limited.member_credit_limit_amount as numeric(18, 2)) as member_credit_limit_amount,
        cast(limited.group_limit_amount as numeric(18, 2)) as group_limit_amount,
        limited.has_committee_limit,
        {{ gridcredit.safe_divide('limited.group_exposure_amount', 'limited.group_limit_amount') }}
            as group_limit_utilisation_rate,
        limited.members_over_own_limit_count,
        {{ gridcredit.grade_from_rank('limited.worst_grade_rank') }} as worst_grade,
        cast(limited.exposure_weighted_grade_rank as numeric(4, 2)) as exposure_weighted_grade_rank,
        {{ gridcredit.grade_from_rank('limited.exposure_weighted_grade_rank') }} as exposure_weighted_grade,
        limited.group_exposure_amount > limited.group_limit_amount as is_over_group_limit,
        limited.group_exposure_amount > limited.group_limit_amount
        and limited.members_over_own_limit_count = 0 as is_hidden_over_limit_alert,
        case
            when limited.group_exposure_amount > limited.group_limit_amount
                and limited.members_over_own_limit_count = 0
                then 'Group over its limit although every member is within its own: exposure '
                    || {{ gridcredit.format_amount('limited.group_exposure_amount') }} || ' against a group limit of '
                    || {{ gridcredit.format_amount('limited.group_limit_amount') }} || ' ('
                    || {{ dbt.cast('limited.member_account_count', dbt.type_string()) }} || ' accounts)'
            when limited.group_exposure_amount > limited.group_limit_amount
                then 'Group over its limit: exposure '
                    || {{ gridcredit.format_amount('limited.group_exposure_amount') }}
                    || ' against ' || {{ gridcredit.format_amount('limited.group_limit_amount') }} || '; '
                    || {{ dbt.cast('limited.members_over_own_limit_count', dbt.type_string()) }}
                    || ' member account(s) over their own limit'
        end as alert_message
    from limited

)

select * from final
