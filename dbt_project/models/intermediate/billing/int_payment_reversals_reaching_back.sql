-- One row per payment reversal: the month of the payment it reverses, and the load that delivered
-- the reversal. A reversal re-allocates history (ADR 0014): from the reversed payment's month on,
-- later credits move up to the bills it no longer pays. A model incremental by month that reads the
-- allocations rebuilds from that month when such a load is new to it (docs/decisions/0107), though
-- the load itself only touches the reversal's own month in the load ledger.
-- A small table kept up to date from the newest staged loads (docs/decisions/0109): as a view, each
-- of its three readers in a month joined every staged payment (2.5 s each at 100k, warm).
-- A reversal delivered before the payment it reverses gets no row here until a full build, and
-- needs none: the payment's own load, when it comes, touches the payment's month in the load ledger.
{{
    config(
        materialized='incremental',
        unique_key='payment_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
    )
}}
with

-- Two imports of the staged payments, each read once: a CTE read twice is materialized whole.
staged_payments as (

    select * from {{ ref('stg_billing__payments') }}

),

reversed_payments as (

    select * from {{ ref('stg_billing__payments') }}

),

{% if is_incremental() %}

known as (

    select * from {{ this }}

),

-- Staged payments of loads after the newest reversal this table holds (BRIN on load_id).
new_payments as (

    select staged_payments.* from staged_payments
    where staged_payments.load_id > (select coalesce(max(known.source_load_id), -1) from known)

),

{% else %}

new_payments as (

    select * from staged_payments

),

{% endif %}

reversals as (

    select
        new_payments.payment_id,
        new_payments.reverses_payment_id,
        new_payments.load_id
    from new_payments
    where new_payments.reverses_payment_id is not null
    {%- if is_incremental() %}

    union all

    -- A reversal delivered again without its reversal still re-allocated history from the reversed
    -- payment's month, and so does its withdrawal: keep the row, with the newer load.
    select
        new_payments.payment_id,
        known.reverses_payment_id,
        new_payments.load_id
    from new_payments
    inner join known
        on new_payments.payment_id = known.payment_id
    where new_payments.reverses_payment_id is null

    union all

    -- A reversed payment delivered again (its date may have moved): its reversal's month again.
    select
        known.payment_id,
        known.reverses_payment_id,
        known.source_load_id as load_id
    from known
    inner join new_payments
        on known.reverses_payment_id = new_payments.payment_id
    left join new_payments as redelivered
        on known.payment_id = redelivered.payment_id
    where redelivered.payment_id is null
    {%- endif %}

),

final as (

    select
        reversals.payment_id,
        reversals.reverses_payment_id,
        {{ gridcredit.month_start('reversed.paid_at') }} as month_start_date,
        reversals.load_id as source_load_id
    from reversals
    inner join reversed_payments as reversed
        on reversals.reverses_payment_id = reversed.payment_id

)

select * from final
