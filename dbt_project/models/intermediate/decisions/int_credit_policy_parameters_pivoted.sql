-- The named parameters of the credit policy as one row, one column each (cross-joined by the
-- decision models). A parameter missing from the seed is null here, and a not_null test fails.
{%- set parameter_names = [
    'new_customer_advance_bills',
    'limit_rounding_amount',
    'minimum_credit_limit_amount',
    'good_standing_max_grade_rank',
    'good_standing_min_tenure_months',
    'good_standing_clean_months',
    'good_standing_extra_credit_period_days',
    'good_standing_waives_deposit',
    'watch_list_days_past_due',
    'watch_list_lawsuit_months',
    'watch_list_exit_clean_months',
    'blacklist_days_past_due',
    'blacklist_theft_months',
    'blacklist_exit_clean_months',
    'disconnection_lag_months',
    'group_limit_share_of_member_limits',
    'score_pd_midpoint',
    'score_pd_points_per_log_odds',
    'terms_change_materiality_rate',
    'terms_change_min_amount',
    'collections_worklist_size',
] %}
with

seed as (

    select * from {{ ref('credit_policy_parameters') }}

),

final as (

    select
        {%- for name in parameter_names %}
        max(case when seed.parameter_name = '{{ name }}' then seed.parameter_value end) as {{ name }},
        {%- endfor %}
        count(*) as parameter_count
    from seed

)

select * from final
