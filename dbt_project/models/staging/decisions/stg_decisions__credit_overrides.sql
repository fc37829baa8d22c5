{{
    config(
        pre_hook="{{ gridcredit.create_credit_override_store() }}",
    )
}}
-- The override events as recorded (the pre-hook creates the store on a fresh warehouse, so this view
-- and everything downstream builds before the first override is ever made).
with

source as (

    select * from {{ source('decisions', 'credit_overrides') }}

),

renamed as (

    select
        source.override_event_id,
        source.override_id,
        source.event_type,
        source.customer_id,
        source.final_grade,
        source.credit_limit_amount,
        source.credit_period_days,
        source.payment_cycle,
        source.prepayment_rate,
        source.deposit_months,
        source.effective_from as effective_from_date,
        source.expires_on as expires_on_date,
        source.reason,
        source.created_by,
        source.created_at,
        source.database_user
    from source

)

select * from renamed
