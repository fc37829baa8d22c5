-- Clear names and ID numbers of enterprises' legal representatives and actual controllers, with
-- the pseudonyms the group marts use. Enterprises purged by the retention command (ID number
-- replaced by `purged:<pseudonym>`) are left out.
{{ config(alias='enterprise_people_personal_data') }}

with

source as (

    select * from {{ source('registry', 'enterprises') }}

),

deduplicated as (

    {{ gridcredit.latest_load_per_key('source', ['enterprise_id']) }}

),

personal as (

    select
        deduplicated.enterprise_id,
        deduplicated.legal_representative_name,
        deduplicated.legal_representative_id_number,
        {{ gridcredit.pseudonymise('deduplicated.legal_representative_id_number') }} as legal_representative_key,
        nullif(deduplicated.actual_controller_id_number, '') as actual_controller_id_number,
        {{ gridcredit.pseudonymise('deduplicated.actual_controller_id_number') }} as actual_controller_key,
        deduplicated._load_id as load_id
    from deduplicated
    where deduplicated.legal_representative_id_number not like 'purged:%'

)

select * from personal
