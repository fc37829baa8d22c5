{#-
    dbt.listagg on Spark with its order respected (dbt-spark ignores order_by_clause): collect
    (sort key, value) pairs, sort them, keep the values. Only ascending orders are supported.
-#}
{% macro spark__listagg(measure, delimiter_text, order_by_clause, limit_num) -%}
    {%- if order_by_clause -%}
        {%- set sort_key = modules.re.sub('(?i)^\\s*order\\s+by\\s+', '', order_by_clause).strip() -%}
        {%- if modules.re.search('(?i)\\s(desc|asc)\\s*$', sort_key) or ',' in sort_key -%}
            {{ exceptions.raise_compiler_error("spark__listagg supports one ascending sort key, got: " ~ order_by_clause) }}
        {%- endif -%}
        {%- set collected = "transform(array_sort(collect_list(named_struct('sort_key', " ~ sort_key ~ ", 'value', " ~ measure ~ "))), pair -> pair.value)" -%}
    {%- else -%}
        {%- set collected = "collect_list(" ~ measure ~ ")" -%}
    {%- endif -%}
    {%- if limit_num -%}
        {%- set collected = "slice(" ~ collected ~ ", 1, " ~ limit_num ~ ")" -%}
    {%- endif -%}
    array_join({{ collected }}, {{ delimiter_text }})
{%- endmacro %}
