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
