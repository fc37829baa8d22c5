"""The project's data-test rule, checked statically on dbt's parsed manifest (`dbt parse`, no database).

The rule (dbt_project/README.md, "Tests"), for every model in staging/, marts/ and restricted/ and
every seed:
- primary key: a column tested `unique` + `not_null`, or a `unique_combination_of_columns` whose
  columns are all tested `not_null`; and every `unique` column is also `not_null`;
- foreign key: a column named like another node's single-column key (`customer_id`, or a role
  prefix before it: `owner_enterprise_id`) has a `relationships` test;
- amount (`*_amount*`): a sign rule (`sign_rule`, or `accepted_range` bounded at zero), or the
  declaration `config: meta: {sign: any}` where both signs are legitimate;
- rate (`*_rate*`): `accepted_range` within [0, 1].
Intermediate models are outside the rule: they are internal tables whose keys and values reach the
marts, where they are tested (an intermediate duplicate is a mart duplicate).

A gap fails the test, unless it is in ALLOWED with its reason. An allowed entry that is no longer a
gap fails too, so the list cannot go stale.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from gridcredit import settings

DBT = str(Path(sys.executable).with_name("dbt"))
PROJECT = settings.DBT_PROJECT_DIR
SCOPE_FOLDERS = ("models/staging/", "models/marts/", "models/restricted/", "seeds/")
KEY_SUFFIXES = ("_id", "_code")
AMOUNT = re.compile(r"(^|_)amount(_|$)")
RATE = re.compile(r"(^|_)rate(_|$)")

# (model, column, rule) -> why the rule does not apply; model "*" = every model. Short and explicit.
ALLOWED: dict[tuple[str, str, str], str] = {
    ("*", "load_id", "relationships"): (
        "lineage, not a business key: each raw partition is created by ops.start_load together with"
        " its ledger row and a check constraint `_load_id = <that row>` (ingestion/loader.py)"),
    ("*", "source_load_id", "relationships"): (
        "lineage of incremental models: the newest load_id that can change the month (ADR 0011)"),
    ("stg_billing__bill_deliveries", "", "primary_key"): (
        "every delivered line, all versions (a bill repeated in one file included): the raw side of"
        " the reconciliation; the bill key is held by stg_billing__bills"),
    ("stg_billing__payment_deliveries", "", "primary_key"): (
        "every delivered line, all versions: the raw side of the reconciliation; the payment key is"
        " held by stg_billing__payments"),
    ("stg_ops__manifest_month_totals", "", "primary_key"): (
        "month_start_date is null for refused lines whose month could not be read; the key"
        " (load_id, column_name, month) is unique_combination-tested and held by a unique index"),
    ("credit_policy_terms", "tariff_code", "relationships"): (
        "policy configuration, seeded before any extract: a rule may name a tariff this utility's"
        " billing system does not have (the shipped rules leave it empty = any tariff)"),
    ("fct_group_credit_exposure", "group_limit_utilisation_rate", "rate_range"): (
        "exposure over the group limit is > 1 by design (the alert); tested >= 0"),
}


def parse_manifest(target: Path) -> dict:
    """`dbt parse` into a private target folder (parsing needs no database connection)."""
    result = subprocess.run(
        [DBT, "parse", "--target-path", str(target), "--log-path", str(target / "logs")],
        cwd=PROJECT, env=_env(),
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    return json.loads((target / "manifest.json").read_text())


def _env() -> dict[str, str]:
    """The PostgreSQL profile (whatever engine the caller's environment picks): parsing is the same."""
    env = dict(os.environ, DBT_PROFILES_DIR=str(PROJECT), DBT_SEND_ANONYMOUS_USAGE_STATS="false")
    env.pop("GRIDCREDIT_DBT_TARGET", None)
    return env


def rule_gaps(manifest: dict) -> dict[tuple[str, str, str], str]:
    """Every gap against the rule: (model, column, rule) -> what is missing."""
    nodes = {
        uid: node for uid, node in manifest["nodes"].items()
        if node["resource_type"] in ("model", "seed")
        and node["original_file_path"].startswith(SCOPE_FOLDERS)
    }
    # Tests per node: column -> {test name: [kwargs]}; model-level tests under column None.
    tests: dict[str, dict] = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for node in manifest["nodes"].values():
        if node["resource_type"] != "test" or not node.get("test_metadata"):
            continue
        kwargs = node["test_metadata"].get("kwargs") or {}
        column = node.get("column_name") or kwargs.get("column_name")
        tests[node.get("attached_node")][column][node["test_metadata"]["name"]].append(kwargs)

    def has(uid: str, column: str | None, test: str) -> bool:
        return bool(tests[uid][column].get(test))

    def unique_columns(uid: str) -> set[str]:
        return {column for column, named in tests[uid].items() if column and named.get("unique")}

    # Single-column keys that other nodes refer to: key column name -> nodes holding it.
    keys: dict[str, set[str]] = defaultdict(set)
    for uid, node in nodes.items():
        for column in unique_columns(uid):
            if column.endswith(KEY_SUFFIXES):
                keys[column].add(node["name"])

    gaps = {}
    for uid, node in nodes.items():
        name = node["name"]
        own_keys = unique_columns(uid)
        combinations = [kwargs["combination_of_columns"]
                        for kwargs in tests[uid][None].get("unique_combination_of_columns", [])]
        if not (any(has(uid, column, "not_null") for column in own_keys)
                or any(all(has(uid, column, "not_null") for column in combination) for combination in combinations)):
            gaps[(name, "", "primary_key")] = "no unique + not_null key (column or unique_combination_of_columns)"
        for column in sorted(own_keys):
            if not has(uid, column, "not_null"):
                gaps[(name, column, "primary_key")] = "unique but not not_null"
        for column in node["columns"]:
            referenced = sorted({owner for key, owners in keys.items()
                                 if column == key or column.endswith("_" + key) for owner in owners} - {name})
            if column not in own_keys and referenced and not has(uid, column, "relationships"):
                gaps[(name, column, "relationships")] = f"no relationships test (key of {', '.join(referenced)})"
            if AMOUNT.search(column) and not _has_sign_rule(tests[uid][column]) \
                    and not _declares_either_sign(node["columns"][column]):
                gaps[(name, column, "sign_rule")] = "amount without a sign rule"
            if RATE.search(column) and not _is_rate_range(tests[uid][column]):
                gaps[(name, column, "rate_range")] = "rate without accepted_range [0, 1]"
    return gaps


def _declares_either_sign(column: dict) -> bool:
    """`config: meta: {sign: any}`: both signs are legitimate (a balance, a net amount). A declaration,
    not a test: a sign_rule that accepts every value could never fail."""
    meta = {**(column.get("meta") or {}), **((column.get("config") or {}).get("meta") or {})}
    return meta.get("sign") == "any"


def _has_sign_rule(named: dict) -> bool:
    if named.get("sign_rule"):
        return True
    return any(kwargs.get("min_value") is not None and float(kwargs["min_value"]) >= 0
               or kwargs.get("max_value") is not None and float(kwargs["max_value"]) <= 0
               for kwargs in named.get("accepted_range", []))


def _is_rate_range(named: dict) -> bool:
    return any(kwargs.get("min_value") is not None and float(kwargs["min_value"]) >= 0
               and kwargs.get("max_value") is not None and float(kwargs["max_value"]) <= 1
               for kwargs in named.get("accepted_range", []))


def allowed(model: str, column: str, rule: str) -> tuple[str, str, str] | None:
    """The ALLOWED entry that covers this gap, if any."""
    for entry in ((model, column, rule), ("*", column, rule)):
        if entry in ALLOWED:
            return entry
    return None


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> dict:
    return parse_manifest(tmp_path_factory.mktemp("dbt-parse"))


def test_every_key_amount_and_rate_is_tested(manifest):
    gaps = rule_gaps(manifest)
    unexplained = [f"{model}.{column} [{rule}]: {why}" for (model, column, rule), why in sorted(gaps.items())
                   if allowed(model, column, rule) is None]
    stale = [str(entry) for entry in ALLOWED
             if not any(allowed(*gap) == entry for gap in gaps)]
    assert unexplained == [], f"{len(unexplained)} gap(s) against the test rule:\n" + "\n".join(unexplained)
    assert stale == [], "allowed exceptions that are no longer gaps (remove them):\n" + "\n".join(stale)


def test_the_scan_finds_a_missing_test(manifest):
    """The scan is not vacuous: dropping one test of each kind from the real manifest is a gap."""
    wanted = {("fct_bills", "customer_id", "relationships"), ("fct_bills", "bill_id", "not_null"),
              ("fct_customer_months", "arrears_amount", "sign_rule"),
              ("fct_collection_segment_months", "recovery_rate", "accepted_range")}
    pruned = dict(manifest, nodes={
        uid: node for uid, node in manifest["nodes"].items()
        if not (node["resource_type"] == "test" and node.get("test_metadata")
                and ((node.get("attached_node") or "").split(".")[-1], node.get("column_name"),
                     node["test_metadata"]["name"]) in wanted)
    })
    assert len(manifest["nodes"]) - len(pruned["nodes"]) == len(wanted)
    gaps = rule_gaps(pruned)
    assert set(gaps) >= {
        ("fct_bills", "customer_id", "relationships"), ("fct_bills", "", "primary_key"),
        ("fct_bills", "bill_id", "primary_key"), ("fct_customer_months", "arrears_amount", "sign_rule"),
        ("fct_collection_segment_months", "recovery_rate", "rate_range")}
