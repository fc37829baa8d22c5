"""Source freshness from the load ledger, without starting dbt (docs/decisions/0094).

`dbt source freshness` costs a dbt start (~10-47 s on a loaded 2-core machine) for what is one
query on ``ops.load_ledger``. This module computes the same answer from the sources' freshness
configuration in dbt's manifest (``warn_after`` / ``error_after`` with their periods, per source and
table, as dbt resolved them) and the same loaded-at values:

* a source whose ``loaded_at_query`` is ``gridcredit.ledger_loaded_at_query`` (every raw source): the
  newest ``finished_at`` of a ``loaded`` ledger row for its system and table, as that macro selects;
* a source with a ``loaded_at_field`` and no filter: ``max(<field>)`` of the table.

The status follows dbt's rule (dbt ``FreshnessThreshold.status``): ``error`` when the age exceeds
``error_after``, else ``warn`` when it exceeds ``warn_after``, else ``pass``; a source never loaded
(no loaded-at value) is an ``error``, as dbt reports it. Ages are measured against the database's
``now()``, as dbt's freshness macros do. Any other kind of source (another query, a filter) makes
:func:`ledger_freshness` return None, and the caller runs dbt instead.
"""

from __future__ import annotations

import datetime as dt

import psycopg
from psycopg import sql

LEDGER_QUERY = "{{ gridcredit.ledger_loaded_at_query(this) }}"
PERIOD_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def _threshold(freshness: dict | None, kind: str) -> dict | None:
    rule = (freshness or {}).get(kind) or {}
    if rule.get("count") is None or rule.get("period") is None:
        return None
    return {"count": rule["count"], "period": rule["period"]}


def checked_sources(manifest: dict, exclude_source_names: tuple[str, ...]) -> list[dict]:
    """The sources `dbt source freshness --exclude source:<name>...` checks: those with a threshold."""
    chosen = []
    for unique_id, source in sorted(manifest.get("sources", {}).items()):
        if source.get("source_name") in exclude_source_names:
            continue
        freshness = source.get("freshness")
        if _threshold(freshness, "warn_after") or _threshold(freshness, "error_after"):
            chosen.append({**source, "unique_id": unique_id})
    return chosen


def ledger_freshness(
    pg: psycopg.Connection, manifest: dict, exclude_source_names: tuple[str, ...]
) -> list[dict] | None:
    """One result per checked source, shaped like dbt's sources.json results; None if dbt must decide."""
    sources = checked_sources(manifest, exclude_source_names)
    queries = []
    for source in sources:
        schema, table = source["schema"], source.get("identifier") or source["name"]
        if (source.get("loaded_at_query") or "").strip() == LEDGER_QUERY:
            query = sql.SQL(
                "select max(finished_at) from ops.load_ledger"
                " where status = 'loaded' and system = {} and table_name = {}"
            ).format(sql.Literal(schema.removeprefix("raw_")), sql.Literal(table))
        elif (
            source.get("loaded_at_field")
            and not source.get("loaded_at_query")
            and not (source.get("freshness") or {}).get("filter")
        ):
            query = sql.SQL("select max({}) from {}").format(
                sql.SQL(source["loaded_at_field"]), sql.Identifier(schema, table)
            )
        else:
            return None
        queries.append(query)
    if not sources:
        return []
    now = pg.execute("select now()").fetchone()[0]
    results = []
    for source, query in zip(sources, queries, strict=True):
        loaded = pg.execute(query).fetchone()[0]
        if isinstance(loaded, dt.date) and not isinstance(loaded, dt.datetime):
            loaded = dt.datetime.combine(loaded, dt.time(), tzinfo=now.tzinfo)
        elif isinstance(loaded, dt.datetime) and loaded.tzinfo is None:
            loaded = loaded.replace(tzinfo=dt.UTC)
        criteria = {kind: _threshold(source["freshness"], kind) or {} for kind in ("warn_after", "error_after")}
        if loaded is None:
            status, age = "error", None
        else:
            age = (now - loaded).total_seconds()
            status = "pass"
            for kind, verdict in (("error_after", "error"), ("warn_after", "warn")):
                rule = criteria[kind]
                if rule and age > rule["count"] * PERIOD_SECONDS[rule["period"]]:
                    status = verdict
                    break
        results.append(
            {
                "unique_id": source["unique_id"],
                "status": status,
                "max_loaded_at": loaded.isoformat() if loaded else None,
                "snapshotted_at": now.isoformat(),
                "max_loaded_at_time_ago_in_s": age,
                "criteria": criteria,
            }
        )
    return results
