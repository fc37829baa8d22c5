-- The legal representative's name and ID number and the actual controller's ID number are personal
-- data: only their pseudonyms leave staging, enough to find enterprises that share a legal
-- representative or an actual controller (customer groups) without the clear ID.
with

source as (

    select * from {{ source('registry', 'enterprises') }}

),

deduplicated as (

    {{ gridcredit.latest_load_per_key('source', ['enterprise_id']) }}

),

renamed as (

    select
        deduplicated.enterprise_id,
        deduplicated.enterprise_name,
        deduplicated.uscc,
        {{ gridcredit.pseudonymise('deduplicated.legal_representative_id_number') }} as legal_representative_key,
        {{ gridcredit.pseudonymise('deduplicated.actual_controller_id_number') }} as actual_controller_key,
        cast(nullif(deduplicated.registered_capital, '') as numeric(18, 2)) as registered_capital_amount,
        deduplicated.industry_code,
        cast(nullif(deduplicated.established_date, '') as date) as established_date,
        deduplicated._load_id as load_id
    from deduplicated

)

select * from renamed
