-- The credit decisions and risk figures by segment: one row per segment dimension, segment value and
-- month, for the eight drill dimensions (supply region, industry, customer type, settlement method,
-- tariff, final grade (the grade decisions use), payment method, customer value tier) and `all` (the
-- whole book). Amounts are sums and rates are ratios of sums, so a BI tool can add segments up.
-- Incremental by scored month (docs/decisions/0104): rebuilt from the first month the decisions rebuilt.
{%- set reprocess_from = gridcredit.incremental_in_decision_chain(ref('fct_credit_decisions')) %}
{%- set dimensions = [
    'region_code', 'industry_code', 'customer_type', 'settlement_method',
    'tariff_code', 'decision_grade', 'payment_method', 'value_tier',
] %}
with

decisions as (

    select * from {{ ref('fct_credit_decisions') }}
    where {{ gridcredit.reprocess_filter('month_start_date', reprocess_from) }}

),

segmented as (

    {%- for dimension in dimensions + ['all'] %}
    select
        '{{ dimension }}' as segment_dimension,
        {%- if dimension == 'all' %}
        'all' as segment_value,
        {%- else %}
        coalesce({{ dbt.cast('decisions.' ~ dimension, dbt.type_string()) }}, 'unknown') as segment_value,
        {%- endif %}
        decisions.*
    from decisions
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}

),

final as (

    select
        {{ gridcredit.surrogate_key([
            'segmented.segment_dimension', 'segmented.segment_value', 'segmented.month_start_date'
        ]) }} as credit_decision_segment_id,
        segmented.segment_dimension,
        segmented.segment_value,
        segmented.month_start_date,
        count(*) as customer_count,
        sum(case when segmented.is_approval_required then 1 else 0 end) as approval_required_count,
        sum(case when segmented.has_terms_change then 1 else 0 end) as terms_change_count,
        sum(case when segmented.has_override then 1 else 0 end) as override_count,
        sum(case when segmented.credit_list_status = 'good_standing' then 1 else 0 end) as good_standing_count,
        sum(case when segmented.credit_list_status = 'watch_list' then 1 else 0 end) as watch_list_count,
        sum(case when segmented.credit_list_status = 'blacklist' then 1 else 0 end) as blacklist_count,
        sum(case when segmented.policy_segment = 'new_customer' then 1 else 0 end) as new_customer_count,
        {%- for cycle in ['monthly', 'semi_monthly', 'weekly', 'prepaid'] %}
        sum(case when segmented.payment_cycle = '{{ cycle }}' then 1 else 0 end) as {{ cycle }}_cycle_count,
        {%- endfor %}
        sum(segmented.expected_monthly_bill_amount) as expected_monthly_bill_amount,
        sum(segmented.prepayment_amount) as prepayment_amount,
        {{ gridcredit.safe_divide('sum(segmented.prepayment_amount)', 'sum(segmented.expected_monthly_bill_amount)') }}
            as prepayment_coverage_rate,
        sum(segmented.deposit_amount) as deposit_amount,
        sum(segmented.credit_limit_amount) as credit_limit_amount,
        {{ gridcredit.safe_divide(
            'sum(segmented.credit_period_days * segmented.expected_monthly_bill_amount)',
            'sum(segmented.expected_monthly_bill_amount)'
        ) }} as bill_weighted_credit_period_days,
        sum(segmented.outstanding_amount) as outstanding_amount,
        sum(segmented.arrears_amount) as arrears_amount,
        sum(segmented.exposure_at_default_amount) as exposure_at_default_amount,
        sum(segmented.expected_loss_amount) as expected_loss_amount,
        {{ gridcredit.safe_divide('sum(segmented.expected_loss_amount)', 'sum(segmented.exposure_at_default_amount)') }}
            as expected_loss_rate,
        {{ gridcredit.exact_float_avg('segmented.bad_12m_probability') }} as mean_bad_12m_probability,
        {{ gridcredit.exact_float_avg('segmented.arrears_probability') }} as mean_arrears_probability,
        max(segmented.source_load_id) as source_load_id,
        max(segmented.scored_at) as scored_at,
        max(segmented.overrides_revision) as overrides_revision
    from segmented
    group by segmented.segment_dimension, segmented.segment_value, segmented.month_start_date

)

select * from final
