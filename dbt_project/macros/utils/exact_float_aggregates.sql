{#-
    Sum / mean of a floating-point column that is identical on every run. Floats added in another
    order (parallel workers, another scan order) differ in the last bits, so a rerun on the same data
    would publish different checksums. The terms are added as exact decimals (12 decimal places, well
    below any probability or kWh that matters) and the result cast back to double precision.
-#}
{% macro exact_float_sum(expression) -%}
    {{ dbt.cast('sum(' ~ dbt.cast(expression, 'decimal(38, 12)') ~ ')', 'double precision') }}
{%- endmacro %}

{% macro exact_float_avg(expression) -%}
    {{ dbt.cast('avg(' ~ dbt.cast(expression, 'decimal(38, 12)') ~ ')', 'double precision') }}
{%- endmacro %}
