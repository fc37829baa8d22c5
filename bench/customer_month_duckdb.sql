-- DuckDB port of bench/customer_month_reference.sql (the peer in `make bench`): the same statement,
-- line for line where the dialects agree, computing the customer-month mart's columns straight from
-- the generated CSV files (what a user who picked DuckDB instead of PostgreSQL + dbt would run).
-- bench/bench_pipeline.py defines the views raw_customers, raw_bills, raw_payments, raw_meters,
-- raw_readings (read_csv, all columns text, _load_id / _line_number as the loader records them) and
-- load_ledger, config_arrears_policy beforehand. Differences from the PostgreSQL text: strptime
-- instead of to_date, `interval 1 month`, range() for generate_series, decimal instead of numeric.
with
ledger as (
    select
        load_id,
        strptime(substr(first_month, 1, 7), '%Y-%m')::date as first_month,
        strptime(substr(coalesce(last_month, first_month), 1, 7), '%Y-%m')::date as last_month
    from load_ledger
    where status = 'loaded'
),
months as (
    select
        m::date as month_start,
        (m + interval 1 month - interval 1 day)::date as month_end
    from range(
        (select min(first_month) from ledger)::timestamp,
        (select max(last_month) from ledger)::timestamp + interval 1 day,
        interval 1 month
    ) as t (m)
),
tolerance as (select arrears_tolerance_amount as amount from config_arrears_policy),
customers as (
    select distinct on (customer_id) customer_id, open_date::date as open_date
    from raw_customers
    order by customer_id, _load_id desc, _line_number desc
),
bills as (
    select distinct on (bill_id)
        bill_id, customer_id, issue_date::date as issue_date, due_date::date as due_date,
        amount::decimal(18, 4) as amount, kwh::decimal(18, 4) as kwh, bill_status
    from raw_bills
    order by bill_id, _load_id desc, _line_number desc
),
payments as (
    select distinct on (payment_id)
        payment_id, customer_id, paid_at::timestamp as paid_at, amount::decimal(18, 4) as amount
    from raw_payments
    order by payment_id, _load_id desc, _line_number desc
),
readings as (
    select distinct on (meter_id, reading_date)
        meter_id, reading_date::date as reading_date, kwh::decimal(18, 4) as kwh
    from raw_readings
    order by meter_id, reading_date, _load_id desc, _line_number desc
),
meters as (
    select distinct on (meter_id) meter_id, customer_id
    from raw_meters
    order by meter_id, _load_id desc, _line_number desc
),
spine as (
    select c.customer_id, m.month_start, m.month_end,
        min(m.month_start) over (partition by c.customer_id) as first_month
    from customers as c
    join months as m on m.month_end >= c.open_date
),
receivable as (
    select * from bills where bill_status <> 'cancelled' and amount > 0
),
credit as (
    select customer_id, paid_at::date as credit_date, amount from payments
    union all
    select customer_id, issue_date, -amount from bills where bill_status <> 'cancelled' and amount < 0
),
entries as (
    select customer_id, date_trunc('month', issue_date)::date as month, amount as billed_pos,
        0::decimal(18, 4) as due0, 0::decimal(18, 4) as due30, 0::decimal(18, 4) as due60,
        0::decimal(18, 4) as due90, 0::decimal(18, 4) as credited
    from receivable
    union all
    select customer_id, greatest(date_trunc('month', issue_date), date_trunc('month', due_date + 1))::date,
        0, amount, 0, 0, 0, 0
    from receivable
    union all
    select customer_id, greatest(date_trunc('month', issue_date), date_trunc('month', due_date + 31))::date,
        0, 0, amount, 0, 0, 0
    from receivable
    union all
    select customer_id, greatest(date_trunc('month', issue_date), date_trunc('month', due_date + 61))::date,
        0, 0, 0, amount, 0, 0
    from receivable
    union all
    select customer_id, greatest(date_trunc('month', issue_date), date_trunc('month', due_date + 91))::date,
        0, 0, 0, 0, amount, 0
    from receivable
    union all
    select customer_id, date_trunc('month', credit_date)::date, 0, 0, 0, 0, 0, amount from credit
),
firsts as (select customer_id, min(first_month) as first_month from spine group by customer_id),
monthly as (
    select e.customer_id, greatest(e.month, f.first_month) as month,
        sum(billed_pos) as billed_pos, sum(due0) as due0, sum(due30) as due30, sum(due60) as due60,
        sum(due90) as due90, sum(credited) as credited
    from entries as e join firsts as f using (customer_id)
    group by 1, 2
),
billed_net as (
    select b.customer_id, greatest(date_trunc('month', b.issue_date)::date, f.first_month) as month,
        sum(b.amount) as billed, sum(b.kwh) as kwh
    from bills as b join firsts as f using (customer_id)
    where b.bill_status <> 'cancelled' group by 1, 2
),
collected as (
    select p.customer_id, greatest(date_trunc('month', p.paid_at)::date, f.first_month) as month,
        sum(p.amount) as collected
    from payments as p join firsts as f using (customer_id) group by 1, 2
),
running as (
    select s.customer_id, s.month_start, s.month_end,
        sum(coalesce(mo.billed_pos, 0)) over w as billed_to_date,
        sum(coalesce(mo.due0, 0)) over w as due0_to_date,
        sum(coalesce(mo.due30, 0)) over w as due30_to_date,
        sum(coalesce(mo.due60, 0)) over w as due60_to_date,
        sum(coalesce(mo.due90, 0)) over w as due90_to_date,
        sum(coalesce(mo.credited, 0)) over w as credited_to_date
    from spine as s
    left join monthly as mo on mo.customer_id = s.customer_id and mo.month = s.month_start
    window w as (partition by s.customer_id order by s.month_start rows unbounded preceding)
),
bill_ends as (
    select customer_id, due_date,
        sum(amount) over (partition by customer_id order by due_date, issue_date, bill_id) as billed_through
    from receivable
),
positions as (
    select r.customer_id, r.month_start, r.credited_to_date + t.amount as pos, 0 as kind, null::date as due_date
    from running as r cross join tolerance as t
    union all
    select customer_id, null, billed_through, 1, due_date from bill_ends
),
frontier as (
    select customer_id, month_start, kind,
        min(due_date) over (partition by customer_id order by pos desc, kind, month_start rows unbounded preceding)
            as oldest_due
    from positions
),
consumption as (
    select m.customer_id, date_trunc('month', r.reading_date)::date as month,
        sum(r.kwh) as kwh, count(*) as reading_days, count(*) filter (where r.kwh = 0) as zero_days
    from (
        select me.customer_id, rd.reading_date, sum(rd.kwh) as kwh
        from readings as rd join meters as me using (meter_id)
        group by 1, 2
    ) as r
    join (select distinct customer_id from customers) as m using (customer_id)
    group by 1, 2
)
select
    r.customer_id,
    r.month_start as month_start_date,
    coalesce(bn.billed, 0) as billed_amount,
    coalesce(bn.kwh, 0) as billed_kwh,
    coalesce(co.collected, 0) as collected_amount,
    greatest(r.billed_to_date - r.credited_to_date, 0) as receivable_balance_amount,
    greatest(r.credited_to_date - r.billed_to_date, 0) as credit_balance_amount,
    greatest(r.due0_to_date - r.credited_to_date, 0) as arrears_amount,
    greatest(r.due0_to_date - r.credited_to_date, 0) > t.amount as is_in_arrears,
    case when greatest(r.due0_to_date - r.credited_to_date, 0) > t.amount
        then r.month_end - f.oldest_due else 0 end as days_past_due,
    greatest(r.due0_to_date - r.credited_to_date, 0) - greatest(r.due30_to_date - r.credited_to_date, 0)
        as arrears_0_30_days_amount,
    greatest(r.due30_to_date - r.credited_to_date, 0) - greatest(r.due60_to_date - r.credited_to_date, 0)
        as arrears_31_60_days_amount,
    greatest(r.due60_to_date - r.credited_to_date, 0) - greatest(r.due90_to_date - r.credited_to_date, 0)
        as arrears_61_90_days_amount,
    greatest(r.due90_to_date - r.credited_to_date, 0) as arrears_over_90_days_amount,
    coalesce(cs.kwh, 0) as consumption_kwh,
    coalesce(cs.reading_days, 0) as reading_days,
    coalesce(cs.zero_days, 0) as zero_reading_days
from running as r
cross join tolerance as t
join frontier as f on f.customer_id = r.customer_id and f.month_start = r.month_start and f.kind = 0
left join billed_net as bn on bn.customer_id = r.customer_id and bn.month = r.month_start
left join collected as co on co.customer_id = r.customer_id and co.month = r.month_start
left join consumption as cs on cs.customer_id = r.customer_id and cs.month = r.month_start
