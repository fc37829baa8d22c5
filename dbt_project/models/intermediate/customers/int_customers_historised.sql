-- Customer attribute history (SCD type 2) rebuilt from the change extract's effective dates, so
-- every rebuild gives the same history. A version starts at the account's open date and at every
-- effective date after it. The value of an attribute in a version is the new_value of its latest
-- change effective on or before the version start; before the first change it is that change's
-- old_value; without any change it is the current value from the customer extract.
{%- set attributes = [
    'customer_type', 'tariff_code', 'region_code', 'settlement_method',
    'payment_method', 'contract_capacity_kva', 'voltage_level',
] %}

with

customers as (

    select * from {{ ref('stg_billing__customers') }}

),

changes as (

    select * from {{ ref('stg_billing__customer_changes') }}

),

ordered_changes as (

    select
        changes.customer_id,
        changes.changed_attribute,
        changes.effective_date,
        changes.old_value,
        changes.new_value,
        row_number() over (
            partition by changes.customer_id, changes.changed_attribute
            order by changes.effective_date, changes.customer_change_id
        ) as change_number
    from changes

),

version_starts as (

    select
        customers.customer_id,
        customers.open_date as valid_from
    from customers

    union

    select
        customers.customer_id,
        ordered_changes.effective_date as valid_from
    from ordered_changes
    inner join customers
        on ordered_changes.customer_id = customers.customer_id
    where ordered_changes.effective_date > customers.open_date

),

changes_in_force as (

    select
        version_starts.customer_id,
        version_starts.valid_from,
        ordered_changes.changed_attribute,
        ordered_changes.new_value,
        row_number() over (
            partition by version_starts.customer_id, version_starts.valid_from, ordered_changes.changed_attribute
            order by ordered_changes.change_number desc
        ) as recency
    from version_starts
    inner join ordered_changes
        on
            version_starts.customer_id = ordered_changes.customer_id
            and version_starts.valid_from >= ordered_changes.effective_date

),

values_in_force as (

    select
        version_starts.customer_id,
        version_starts.valid_from,
        {%- for attribute in attributes %}
        max(case when changes_in_force.changed_attribute = '{{ attribute }}' then changes_in_force.new_value end)
            as {{ attribute }}_changed_to,
        {%- endfor %}
        count(changes_in_force.changed_attribute) as changes_in_force_count
    from version_starts
    left join changes_in_force
        on
            version_starts.customer_id = changes_in_force.customer_id
            and version_starts.valid_from = changes_in_force.valid_from
            and changes_in_force.recency = 1
    group by version_starts.customer_id, version_starts.valid_from

),

values_before_changes as (

    select
        ordered_changes.customer_id,
        {%- for attribute in attributes %}
        max(case when ordered_changes.changed_attribute = '{{ attribute }}' then ordered_changes.old_value end)
            as {{ attribute }}_before_changes,
        {%- endfor %}
        count(*) as changed_attribute_count
    from ordered_changes
    where ordered_changes.change_number = 1
    group by ordered_changes.customer_id

),

versions as (

    select
        values_in_force.customer_id,
        values_in_force.valid_from,
        lead(values_in_force.valid_from) over (
            partition by values_in_force.customer_id order by values_in_force.valid_from
        ) as valid_to,
        {%- for attribute in attributes %}
        {%- if attribute == 'contract_capacity_kva' %}
        coalesce(
            cast(values_in_force.contract_capacity_kva_changed_to as numeric(18, 2)),
            cast(values_before_changes.contract_capacity_kva_before_changes as numeric(18, 2)),
            customers.contract_capacity_kva
        ) as contract_capacity_kva,
        {%- else %}
        coalesce(
            values_in_force.{{ attribute }}_changed_to,
            values_before_changes.{{ attribute }}_before_changes,
            customers.{{ attribute }}
        ) as {{ attribute }},
        {%- endif %}
        {%- endfor %}
        customers.customer_kind,
        customers.is_organisation,
        customers.enterprise_id,
        customers.industry_code,
        customers.open_date,
        customers.close_date
    from values_in_force
    inner join customers
        on values_in_force.customer_id = customers.customer_id
    left join values_before_changes
        on values_in_force.customer_id = values_before_changes.customer_id

),

final as (

    select
        {{ gridcredit.surrogate_key(['versions.customer_id', 'versions.valid_from']) }} as customer_version_id,
        versions.*,
        versions.valid_to is null as is_current
    from versions

)

select * from final
