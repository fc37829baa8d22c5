{#-
    The pre-hook of int_payments_allocated_to_bills in an incremental run (docs/decisions/0112):
    per customer, the amount position from which its allocation can change, and that part of its
    rows taken out of the table. Everything in one transaction with the model's insert; the two
    temporary tables are dropped at commit.

    Each customer's allocation rows tile the positions [0, amount credited): a row is the overlap of
    one bill's amount range with one credit's (or the credit's part past the last bill). A load
    touching months from m on (a reversal: from the reversed payment's month) changes, per
    customer, only bills due from m' on (m, or earlier for a bill issued from m on but due before
    it, as int_bills_sequenced rebuilds) and credits dated from m on. The bills due before m' come
    first in the allocation order and the credits dated before m come first in theirs, so every
    position below
        P = the lowest of: where the first bill due from m' starts (now, or in the table), and,
            when a credit dated from m on exists (now, or in the table), where the credits dated
            before m end
    is allocated as before. The row holding P starts at the cut (`cut_amount`, at most P); rows
    from the cut on are moved to `allocation_tail`, from which the model reads the positions of
    the credits dated before m that reach past the cut, and allocates [cut, ...) again.
-#}
{% macro allocation_tail_pre_hook() -%}
    {%- if not execute or not is_incremental() -%}
        {{ return('') }}
    {%- endif -%}
    {%- set reprocess_from = gridcredit.reprocess_from_month(
        ref('int_load_ledger_months'), ref('int_payment_reversals_reaching_back')) -%}
    {%- if reprocess_from == 'none' -%}
        {%- set credits_from, bills_due_from = none, none -%}
    {%- else -%}
        {%- set credits_from = reprocess_from -%}
        {#- as int_bills_sequenced: a bill issued from m on but due earlier moves its rebuild back -#}
        {%- set due_earlier_query -%}
            select {{ dbt.cast('min(' ~ gridcredit.month_start('bills.due_date') ~ ')', dbt.type_string()) }}
            from {{ ref('stg_billing__bills') }} as bills
            where bills.issue_date >= cast('{{ reprocess_from }}' as date)
                and bills.due_date < cast('{{ reprocess_from }}' as date)
        {%- endset -%}
        {%- set due_earlier = run_query(due_earlier_query).columns[0].values()[0] -%}
        {%- set bills_due_from = due_earlier or reprocess_from -%}
    {%- endif -%}
    create temporary table allocation_cuts on commit drop as
    {%- if credits_from is none %}
    select
        cast(null as {{ dbt.type_string() }}) as customer_id,
        cast(null as numeric) as cut_amount,
        cast(null as numeric) as credited_before_amount,
        cast(null as timestamp) as credits_from
    where 1 = 0;
    {%- else %}
    with

    existing as (

        select * from {{ this }}

    ),

    credited_before as (

        select
            existing.customer_id,
            max(existing.position_to_amount) as credited_before_amount
        from existing
        where existing.credited_at < cast('{{ credits_from }}' as timestamp)
        group by existing.customer_id

    ),

    customers_with_new_credits as (

        select existing.customer_id
        from existing
        where existing.credited_at >= cast('{{ credits_from }}' as timestamp)

        union

        select payments.customer_id
        from {{ ref('stg_billing__payments') }} as payments
        where payments.paid_at >= cast('{{ credits_from }}' as timestamp)

        union

        select bills.customer_id
        from {{ ref('stg_billing__bills') }} as bills
        where bills.issue_date >= cast('{{ credits_from }}' as date) and bills.bill_amount < 0

    ),

    changed_from as (

        select
            bills.customer_id,
            bills.billed_before_amount as position_amount
        from {{ ref('int_bills_sequenced') }} as bills
        where bills.due_date >= cast('{{ bills_due_from }}' as date)

        union all

        select
            existing.customer_id,
            existing.position_from_amount as position_amount
        from existing
        where existing.bill_due_date >= cast('{{ bills_due_from }}' as date)

        union all

        select
            customers_with_new_credits.customer_id,
            coalesce(credited_before.credited_before_amount, 0) as position_amount
        from customers_with_new_credits
        left join credited_before
            on customers_with_new_credits.customer_id = credited_before.customer_id

    ),

    lowest_changed as (

        select
            changed_from.customer_id,
            min(changed_from.position_amount) as position_amount
        from changed_from
        group by changed_from.customer_id

    ),

    -- the row holding the lowest changed position starts the cut (rows tile the positions)
    cut_rows as (

        select
            existing.customer_id,
            min(existing.position_from_amount) as cut_amount
        from existing
        inner join lowest_changed
            on existing.customer_id = lowest_changed.customer_id
        where existing.position_to_amount > lowest_changed.position_amount
        group by existing.customer_id

    )

    select
        lowest_changed.customer_id,
        coalesce(cut_rows.cut_amount, lowest_changed.position_amount) as cut_amount,
        coalesce(credited_before.credited_before_amount, 0) as credited_before_amount,
        cast('{{ credits_from }}' as timestamp) as credits_from
    from lowest_changed
    left join cut_rows
        on lowest_changed.customer_id = cut_rows.customer_id
    left join credited_before
        on lowest_changed.customer_id = credited_before.customer_id;
    {%- endif %}

    create temporary table allocation_tail on commit drop as
    select existing.*
    from {{ this }} as existing
    inner join allocation_cuts as cuts
        on existing.customer_id = cuts.customer_id
    where existing.position_from_amount >= cuts.cut_amount;

    delete from {{ this }} as existing
    using allocation_cuts as cuts
    where existing.customer_id = cuts.customer_id and existing.position_from_amount >= cuts.cut_amount;

    analyze allocation_cuts;
    analyze allocation_tail
{%- endmacro %}
