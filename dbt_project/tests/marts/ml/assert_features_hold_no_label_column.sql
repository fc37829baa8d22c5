-- Assert that the feature mart holds no label column: every column of fct_customer_month_labels
-- other than the keys and the lineage is absent from fct_customer_month_features (labels are kept apart).
{%- set features = ref('fct_customer_month_features') %}
{%- set labels = ref('fct_customer_month_labels') %}

with

feature_columns as (

    select feature_columns.column_name
    from information_schema.columns as feature_columns
    where
        feature_columns.table_schema = '{{ features.schema }}'
        and feature_columns.table_name = '{{ features.identifier }}'

),

label_columns as (

    select label_columns.column_name
    from information_schema.columns as label_columns
    where
        label_columns.table_schema = '{{ labels.schema }}'
        and label_columns.table_name = '{{ labels.identifier }}'
        and label_columns.column_name not in ('customer_month_id', 'customer_id', 'as_of_month', 'source_load_id')

)

select feature_columns.column_name
from feature_columns
inner join label_columns
    on feature_columns.column_name = label_columns.column_name
