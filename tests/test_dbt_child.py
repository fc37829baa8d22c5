"""gridcredit.dbt_child: dbt's partial parse survives another port, login or role, not another
database; the project's parse reads no connection field beyond those it keys on; data tests reuse
their thread's connection (ADR 0096)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from gridcredit import dbt_child, settings

PROFILE = """
tiny:
  target: warehouse
  outputs:
    warehouse:
      type: postgres
      host: "{{ env_var('TINY_HOST') }}"
      port: "{{ env_var('TINY_PORT') | as_number }}"
      user: "{{ env_var('TINY_USER') }}"
      password: ""
      dbname: "{{ env_var('TINY_DB') }}"
      schema: staging
      threads: 1
"""


def tiny_project(root: Path) -> Path:
    (root / "models").mkdir(parents=True)
    (root / "dbt_project.yml").write_text("name: tiny\nversion: '1.0'\nprofile: tiny\n")
    (root / "profiles.yml").write_text(PROFILE)
    (root / "models" / "one.sql").write_text("select 1 as one\n")
    return root


def parse(project: Path, command: list[str], **connection: str) -> str:
    env = {**os.environ, "DBT_PROFILES_DIR": str(project), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    env.update({f"TINY_{key.upper()}": value for key, value in connection.items()})
    result = subprocess.run(
        [*command, "--debug", "parse"], cwd=project, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def test_partial_parse_survives_another_port_and_login_not_another_database(tmp_path):
    project = tiny_project(tmp_path / "tiny")
    child = dbt_child.command()
    first = dict(host="127.0.0.1", port="5432", user="a", db="one")
    parse(project, child, **first)

    moved = parse(project, child, **{**first, "host": "/tmp/sockets", "port": "6543", "user": "b"})
    assert "Unable to do partial parsing" not in moved, moved
    assert "Partial parsing enabled: 0 files deleted, 0 files added, 0 files changed" in moved, moved

    other_database = parse(project, child, **{**first, "db": "two"})
    assert "Unable to do partial parsing because profile has changed" in other_database, other_database

    # dbt itself (no narrowing) parses again for a port change: what the child saves
    plain = parse(project, [str(Path(sys.executable).with_name("dbt"))], **{**first, "db": "two", "port": "7654"})
    assert "Unable to do partial parsing because profile has changed" in plain, plain


def test_project_parse_reads_only_the_target_fields_the_child_keys_on():
    """Parse-time jinja (models, their yml, dbt_project.yml) may read target.name/type/schema/database
    only: any other field (port, user, ...) would make a reused parse wrong (gridcredit/dbt_child.py)."""
    allowed = {"name", "type", "schema", "database"}
    found: dict[str, set[str]] = {}
    files = [settings.DBT_PROJECT_DIR / "dbt_project.yml"]
    files += sorted((settings.DBT_PROJECT_DIR / "models").rglob("*.sql"))
    files += sorted((settings.DBT_PROJECT_DIR / "models").rglob("*.yml"))
    for path in files:
        for match in re.finditer(r"\{[{%].*?[}%]\}", path.read_text(), re.S):
            for field in re.findall(r"\btarget\.(\w+)", match.group(0)):
                if field not in allowed:
                    found.setdefault(str(path.relative_to(settings.DBT_PROJECT_DIR)), set()).add(field)
    assert not found, f"parse-time jinja reads connection fields: {found}"


def build(project: Path, command: list[str], conn) -> subprocess.CompletedProcess:
    env = {**os.environ, "DBT_PROFILES_DIR": str(project), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    env.update(TINY_HOST=conn.host, TINY_PORT=str(conn.port), TINY_USER=conn.user, TINY_DB=conn.dbname)
    env["PGPASSWORD"] = conn.password
    return subprocess.run(
        [*command, "--debug", "--log-format", "json", "build"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def node_results(project: Path) -> dict[str, tuple[str, int | None, str]]:
    """Status, failure count and message of each node of the last invocation (target/run_results.json)."""
    import json

    results = json.loads((project / "target" / "run_results.json").read_text())["results"]
    return {r["unique_id"].split(".")[2]: (r["status"], r["failures"], r.get("message") or "") for r in results}


def test_data_tests_reuse_the_thread_connection(tmp_path, fresh_database):
    """The child keeps a thread's connection from one data test to the next (one server backend),
    a failing or erroring test leaves it usable for the next, and dbt alone opens one per node."""
    project = tiny_project(tmp_path / "tiny")
    (project / "profiles.yml").write_text(PROFILE.replace('password: ""', "password: \"{{ env_var('PGPASSWORD') }}\""))
    tests = project / "tests"
    tests.mkdir()
    # Each of these tests warns with its server backend's pid as the failure count (fail_calc).
    for name in ("a_pid", "c_pid", "e_pid"):
        (tests / f"{name}.sql").write_text(
            "{{ config(store_failures=true, severity='warn', warn_if='>0', fail_calc='max(pid)') }}\n"
            "select pg_backend_pid() as pid from {{ ref('one') }}\n"
        )
    (tests / "b_fails.sql").write_text("{{ config(store_failures=true) }}\nselect one from {{ ref('one') }}\n")
    (tests / "d_errors.sql").write_text("select one from {{ ref('one') }} where one / (one - 1) > 0\n")
    build(project, dbt_child.command(), fresh_database)
    results = node_results(project)
    assert results["b_fails"][:2] == ("fail", 1), results
    assert "division by zero" in results["d_errors"][2], results
    pids = {results[name][1] for name in ("a_pid", "c_pid", "e_pid")}
    assert len(pids) == 1, results  # one backend for every test, after a failure and an error too

    plain = build(project, [str(Path(sys.executable).with_name("dbt"))], fresh_database)
    plain_results = node_results(project)
    plain_pids = {plain_results[name][1] for name in ("a_pid", "c_pid", "e_pid")}
    assert len(plain_pids) == 3, plain.stdout[-3000:]  # dbt alone: a new backend per node
