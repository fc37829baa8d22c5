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
    Spark: the same HMAC from the same padded keys, which reach the session as Spark SQL settings
    (dbt_project/profiles.yml `server_side_parameters`, filled from DBT_ENV_SECRET_* variables that
    `gridcredit dbt` sets and dbt masks in its logs). `${...}` is Spark's variable substitution: the
    compiled SQL names the settings, the server puts the values in when it parses the statement.
    An unset setting substitutes as '', so a session without the keys fails (raise_error) instead of
    producing unkeyed pseudonyms.
-#}
{% macro spark__pseudonymise(column_expression) -%}
    case
        when {{ column_expression }} is null or {{ column_expression }} = '' then null
        when length('${gridcredit.pseudonym_ikey}') <> 128 or length('${gridcredit.pseudonym_okey}') <> 128
            then raise_error('pseudonymise: the pseudonym keys are not set in this Spark session (run dbt through gridcredit dbt)')
        when {{ column_expression }} like 'purged:%' then substring({{ column_expression }}, 8)
        else lower(sha2(
            concat(
                unhex('${gridcredit.pseudonym_okey}'),
                unhex(sha2(
                    concat(unhex('${gridcredit.pseudonym_ikey}'), encode(upper(trim({{ column_expression }})), 'UTF-8')),
                    256
                ))
            ),
            256
        ))
    end
{%- endmacro %}
