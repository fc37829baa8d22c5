{#-
    The analysts' override store: schema `decisions`, which no pipeline run rebuilds (dbt only reads it,
    through the source `decisions`). Insert-only: an override is an `add` event, ending it early is an
    `expire` event; a trigger refuses every update, delete and truncate, so the audit trail (who, when,
    what, why, until when) is never rewritten. Views derive each override's status and the ones in force.

    One definition for two callers: the pre-hook of stg_decisions__credit_overrides (so a fresh warehouse
    has the table before dbt reads it) and `gridcredit override ...`, which renders the default__ body
    below with plain Jinja (gridcredit/decisions/store.py). Keep the body free of dbt-only functions.
-#}
{% macro create_credit_override_store() -%}
    {{ return(adapter.dispatch('create_credit_override_store', 'gridcredit')()) }}
{%- endmacro %}

{% macro default__create_credit_override_store() -%}
create schema if not exists decisions;

create sequence if not exists decisions.credit_override_number_seq;

create table if not exists decisions.credit_overrides (
    override_event_id bigint generated always as identity primary key,
    override_id text not null,
    event_type text not null check (event_type in ('add', 'expire')),
    customer_id text not null,
    final_grade text check (final_grade in ('AAA', 'AA', 'A', 'B', 'C')),
    credit_limit_amount numeric(18, 2) check (credit_limit_amount >= 0),
    credit_period_days integer check (credit_period_days between 0 and 365),
    payment_cycle text check (payment_cycle in ('monthly', 'semi_monthly', 'weekly', 'prepaid')),
    prepayment_rate numeric(5, 4) check (prepayment_rate between 0 and 1),
    deposit_months numeric(6, 2) check (deposit_months between 0 and 12),
    effective_from date not null,
    expires_on date,
    reason text not null check (length(trim(reason)) > 0),
    created_by text not null check (length(trim(created_by)) > 0),
    created_at timestamptz not null default now(),
    database_user text not null default current_user,
    constraint credit_overrides_add_is_complete check (
        event_type <> 'add'
        or (
            expires_on is not null
            and expires_on >= effective_from
            and num_nonnulls(
                final_grade, credit_limit_amount, credit_period_days, payment_cycle, prepayment_rate, deposit_months
            ) > 0
        )
    ),
    constraint credit_overrides_expire_changes_nothing check (
        event_type <> 'expire'
        or num_nonnulls(
            final_grade, credit_limit_amount, credit_period_days, payment_cycle, prepayment_rate, deposit_months,
            expires_on
        ) = 0
    )
);

create unique index if not exists credit_overrides_one_add_per_override
    on decisions.credit_overrides (override_id) where event_type = 'add';
create unique index if not exists credit_overrides_one_expire_per_override
    on decisions.credit_overrides (override_id) where event_type = 'expire';
create index if not exists credit_overrides_by_customer
    on decisions.credit_overrides (customer_id, override_id);

comment on table decisions.credit_overrides is
    'Analysts'' overrides of grade, limit and terms: insert-only audit trail (who, when, what, why, expiry). '
    'Written by `gridcredit override`; never rebuilt by the pipeline; updates and deletes are refused.';

create or replace function decisions.refuse_override_rewrite() returns trigger
language plpgsql as $body$
begin
    raise exception 'decisions.credit_overrides is insert-only: its history is never rewritten (% refused). '
        'End an override with `gridcredit override expire`.', tg_op
        using errcode = 'insufficient_privilege';
end;
$body$;

create or replace trigger credit_overrides_insert_only
    before update or delete on decisions.credit_overrides
    for each row execute function decisions.refuse_override_rewrite();

create or replace trigger credit_overrides_no_truncate
    before truncate on decisions.credit_overrides
    for each statement execute function decisions.refuse_override_rewrite();

create or replace view decisions.credit_override_status as
with

added as (

    select * from decisions.credit_overrides where event_type = 'add'

),

expired as (

    select * from decisions.credit_overrides where event_type = 'expire'

)

select
    added.override_id,
    added.customer_id,
    added.final_grade,
    added.credit_limit_amount,
    added.credit_period_days,
    added.payment_cycle,
    added.prepayment_rate,
    added.deposit_months,
    added.effective_from,
    added.expires_on,
    added.reason,
    added.created_by,
    added.created_at,
    expired.effective_from as revoked_from,
    expired.reason as revoke_reason,
    expired.created_by as revoked_by,
    expired.created_at as revoked_at,
    case
        when expired.effective_from is null then added.expires_on
        else least(added.expires_on, expired.effective_from - 1)
    end as last_day_in_force
from added
left join expired
    on added.override_id = expired.override_id;

comment on view decisions.credit_override_status is
    'One row per override: what it sets, from when, until when (last_day_in_force: expiry or early end).';

create or replace view decisions.credit_overrides_current as
select *
from decisions.credit_override_status
where effective_from <= current_date
    and last_day_in_force >= current_date;

comment on view decisions.credit_overrides_current is
    'Overrides in force today (wall-clock date). Decisions use the month end of each decision month instead.';
{%- endmacro %}

{#-
    Spark: the store lives in PostgreSQL (the system of record; `gridcredit override` writes there) and
    reaches Spark with the raw layer (`gridcredit spark sync` exports decisions.credit_overrides). Before
    the first sync of a warehouse that never had an override, an empty table of the same columns lets
    the models build.
-#}
{% macro spark__create_credit_override_store() -%}
    {%- do run_query('create database if not exists decisions') -%}
create table if not exists decisions.credit_overrides (
    override_event_id bigint,
    override_id string,
    event_type string,
    customer_id string,
    final_grade string,
    credit_limit_amount decimal(18, 2),
    credit_period_days int,
    payment_cycle string,
    prepayment_rate decimal(5, 4),
    deposit_months decimal(6, 2),
    effective_from date,
    expires_on date,
    reason string,
    created_by string,
    created_at timestamp,
    database_user string
) using parquet
{%- endmacro %}
