with

source as (

    select * from {{ source('registry', 'ownership_links') }}

),

deduplicated as (

    {{ gridcredit.latest_load_per_key('source', ['owner_enterprise_id', 'owned_enterprise_id', 'effective_date']) }}

),

renamed as (

    select
        deduplicated.owner_enterprise_id,
        deduplicated.owned_enterprise_id,
        cast(nullif(deduplicated.voting_stake, '') as numeric(9, 6)) as voting_stake_rate,
        cast(nullif(deduplicated.effective_date, '') as date) as effective_date,
        deduplicated._load_id as load_id
    from deduplicated

)

select * from renamed
