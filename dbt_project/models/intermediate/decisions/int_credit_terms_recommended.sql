-- The current credit policy applied to every customer-month: one row per open customer per scored
-- month with the matching rule, the recommended terms and amounts, the approval they need, exposure
-- at default and expected loss, and why. The rules live in the macro recommend_credit_terms, which
-- `gridcredit policy simulate` also compiles against an alternative policy table.
{{ gridcredit.recommend_credit_terms(
    statuses=ref('int_credit_list_statuses_evaluated'),
    overrides=ref('int_credit_overrides_in_force'),
    policy_terms=ref('credit_policy_terms'),
    payment_cycles=ref('credit_payment_cycles'),
    approval_levels=ref('credit_approval_levels'),
    parameters=ref('int_credit_policy_parameters_pivoted'),
    loss_assumptions=ref('expected_loss_assumptions'),
) }}
