-- One row per payment reversal: the month of the payment it reverses, and the load that delivered
-- the reversal. A reversal re-allocates history (ADR 0014): from the reversed payment's month on,
-- later credits move up to the bills it no longer pays. A model incremental by month that reads the
-- allocations rebuilds from that month when such a load is new to it (docs/decisions/0107), though
-- the load itself only touches the reversal's own month in the load ledger.
-- A view: the incremental run's compile-time query reads only the newest loads (BRIN on load_id).
{{ config(materialized='view') }}

with

payments as (

    select * from {{ ref('stg_billing__payments') }}

),

reversals as (

    select
        payments.payment_id,
        payments.reverses_payment_id,
        payments.load_id
    from payments
    where payments.reverses_payment_id is not null

),

final as (

    select
        reversals.payment_id,
        reversals.reverses_payment_id,
        {{ gridcredit.month_start('reversed.paid_at') }} as month_start_date,
        reversals.load_id as source_load_id
    from reversals
    inner join payments as reversed
        on reversals.reverses_payment_id = reversed.payment_id

)

select * from final
