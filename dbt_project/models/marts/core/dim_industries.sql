-- Industries: one row per GB/T 4754-2017 section, English and Chinese names.
with

industries as (

    select * from {{ ref('industries') }}

),

final as (

    select
        industries.industry_code,
        industries.industry_name_en,
        industries.industry_name_zh
    from industries

)

select * from final
