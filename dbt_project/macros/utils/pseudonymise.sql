{#-
    Pseudonym of a personal value (ID number, USCC): HMAC-SHA256 with a key held outside the database,
    so equal values can be compared without the clear value leaving staging, and nobody without the
    key can recompute a pseudonym from a guessed ID number.

    The key reaches only the session: `gridcredit dbt ...` passes the HMAC inner and outer padded keys
    through libpq's PGOPTIONS (gridcredit/privacy.py pg_options); compiled SQL in target/ and the logs
    name the settings, never the key. A session without them fails ("unrecognized configuration
    parameter") instead of producing unkeyed pseudonyms. HMAC is built from the core sha256() (no
    pgcrypto needed). See docs/decisions/0081-keyed-pseudonyms-restricted-schema-retention.md.

    `purged:<pseudonym>` is what the retention purge (`gridcredit privacy purge`) leaves in the raw
    landing table in place of the ID number: the pseudonym survives, the clear value does not.
-#}
{% macro pseudonymise(column_expression) -%}
    {{ return(adapter.dispatch('pseudonymise', 'gridcredit')(column_expression)) }}
{%- endmacro %}

{% macro default__pseudonymise(column_expression) -%}
    case
        when {{ column_expression }} is null or {{ column_expression }} = '' then null
        when {{ column_expression }} like 'purged:%' then substring({{ column_expression }} from 8)
        else encode(
            sha256(
                decode(current_setting('gridcredit.pseudonym_okey'), 'hex')
                || sha256(
                    decode(current_setting('gridcredit.pseudonym_ikey'), 'hex')
                    || convert_to(upper(trim({{ column_expression }})), 'UTF8')
                )
            ),
            'hex'
        )
    end
{%- endmacro %}

{#-
    Spark: the pseudonym is computed by PostgreSQL, with the key, when `gridcredit spark sync` exports
    the raw layer: the clear identifying value never leaves PostgreSQL (it arrives masked) and the key
    never reaches Spark. The export puts the pseudonym next to the column as `<column>_pseudonym`
    (gridcredit/spark.py export_to_spark, ADR 0093), so this reads that column; it takes a column
    reference only.
-#}
{% macro spark__pseudonymise(column_expression) -%}
    {%- if not modules.re.match('^[A-Za-z_][A-Za-z0-9_]*([.][A-Za-z_][A-Za-z0-9_]*)?$', column_expression) -%}
        {{ exceptions.raise_compiler_error("pseudonymise on Spark takes a column reference (its exported pseudonym is read), got: " ~ column_expression) }}
    {%- endif -%}
    {{ column_expression }}_pseudonym
{%- endmacro %}
