"""Risk decisions: credit policy recommendations, overrides, worklists, what-if and reports.

The recommendations themselves are dbt models (``dbt_project/models/*/decisions``, policy seeds in
``dbt_project/seeds/policy``); this package holds what people do with them. See ``README.md``.
"""

from gridcredit.decisions.store import (
    Override,
    OverrideError,
    OverrideTerms,
    add_override,
    ensure_store,
    expire_override,
    list_overrides,
    override_history,
    store_ddl,
)

__all__ = [
    "Override",
    "OverrideError",
    "OverrideTerms",
    "add_override",
    "ensure_store",
    "expire_override",
    "list_overrides",
    "override_history",
    "store_ddl",
]
