-- Everything that reduces what a customer owes, dated when it happened (as known at the time):
-- payments, payment reversals (negative, at the reversal's own date) and credit notes (negative
-- bills, as a positive credit at their issue date). Cancelled bills are left out.
with

payments as (

    select * from {{ ref('stg_billing__payments') }}

),

bills as (

    select * from {{ ref('stg_billing__bills') }}

),

unioned as (

    select
        payments.customer_id,
        payments.payment_id as credit_id,
        case when payments.reverses_payment_id is null then 'payment' else 'reversal' end as credit_kind,
        payments.paid_at as credited_at,
        cast(payments.paid_at as date) as credit_date,
        payments.payment_amount as credit_amount
    from payments

    union all

    select
        bills.customer_id,
        bills.bill_id as credit_id,
        'credit_note' as credit_kind,
        cast(bills.issue_date as timestamp) as credited_at,
        bills.issue_date as credit_date,
        -bills.bill_amount as credit_amount
    from bills
    where bills.bill_status <> 'cancelled' and bills.bill_amount < 0

),

final as (

    select
        unioned.*,
        {{ gridcredit.month_start('unioned.credit_date') }} as credit_month
    from unioned

)

select * from final
