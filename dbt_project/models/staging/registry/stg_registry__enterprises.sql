-- The legal representative's name and ID number and the actual controller's ID number are personal
-- data: only their pseudonyms leave staging, enough to find enterprises that share a legal
-- representative or an actual controller (customer groups) without the clear ID.
-- A table on Spark, a view elsewhere: Spark substitutes the pseudonym keys into the statement before
-- parsing it, and a view would keep them in its stored text in the metastore (docs/SPARK.md).
{{ config(materialized='table' if target.type == 'spark' else 'view') }}

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
