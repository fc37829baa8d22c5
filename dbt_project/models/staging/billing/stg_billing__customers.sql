-- Personal columns (customer_name, id_number, phone, address, email) stop here: only the
-- pseudonymous account number and coarse attributes go on. Birth year and gender are read from the
-- resident ID number (GB 11643: digits 7-10 birth year, digit 17 odd = male) and the ID itself is
-- replaced by a pseudonym (see macros/utils/pseudonymise.sql: the keyed-hash seam).
with

source as (

    select * from {{ source('billing', 'customers') }}

),

deduplicated as (

    {{ gridcredit.latest_load_per_key('source', ['customer_id']) }}

),

renamed as (

    select
        deduplicated.customer_id,
        deduplicated.customer_kind,
        deduplicated.customer_kind = 'organisation' as is_organisation,
        {{ gridcredit.pseudonymise('deduplicated.id_number') }} as id_number_key,
        case
            when deduplicated.customer_kind = 'person' and {{ dbt.length('deduplicated.id_number') }} = 18
                then cast(substring(deduplicated.id_number from 7 for 4) as integer)
        end as birth_year,
        case
            when deduplicated.customer_kind = 'person' and {{ dbt.length('deduplicated.id_number') }} = 18
                then case
                        when mod(cast(substring(deduplicated.id_number from 17 for 1) as integer), 2) = 1
                            then 'male'
                        else 'female'
                    end
        end as gender,
        nullif(deduplicated.phone, '') is not null as has_phone,
        nullif(deduplicated.email, '') is not null as has_email,
        nullif(deduplicated.enterprise_id, '') as enterprise_id,
        deduplicated.region_code,
        deduplicated.industry_code,
        deduplicated.customer_type,
        deduplicated.voltage_level,
        deduplicated.tariff_code,
        deduplicated.settlement_method,
        deduplicated.payment_method,
        cast(nullif(deduplicated.contract_capacity_kva, '') as numeric(18, 2)) as contract_capacity_kva,
        cast(nullif(deduplicated.open_date, '') as date) as open_date,
        cast(nullif(deduplicated.close_date, '') as date) as close_date,
        deduplicated._load_id as load_id
    from deduplicated

)

select * from renamed
