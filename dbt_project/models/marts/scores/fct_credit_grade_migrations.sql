-- Grade migration month over month: one row per as-of month, supply region, industry, customer
-- type, last month's final grade and this month's final grade, counting the customers scored in
-- both months (segments as of this month). The migration matrix of the credit overview.
with

scores as (

    select * from {{ ref('fct_customer_month_scores') }}

),

moves as (

    select
        as_of_month,
        region_code,
        industry_code,
        customer_type,
        previous_final_grade as from_grade,
        final_grade as to_grade,
        {{ gridcredit.grade_rank('final_grade') }} - {{ gridcredit.grade_rank('previous_final_grade') }} as grade_steps
    from scores
    where previous_final_grade is not null

),

final as (

    select
        {{ gridcredit.surrogate_key([
            'as_of_month', 'region_code', 'industry_code', 'customer_type', 'from_grade', 'to_grade',
        ]) }} as grade_migration_id,
        as_of_month,
        region_code,
        industry_code,
        customer_type,
        from_grade,
        to_grade,
        cast(grade_steps as integer) as grade_steps,
        case
            when grade_steps > 0 then 'downgrade'
            when grade_steps < 0 then 'upgrade'
            else 'unchanged'
        end as grade_movement,
        cast(count(*) as integer) as customer_count
    from moves
    group by as_of_month, region_code, industry_code, customer_type, from_grade, to_grade, grade_steps

)

select * from final
