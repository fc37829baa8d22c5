"""`python -m gridcredit.dbt_child ARGS...`: dbt's own command line, with a partial parse that
survives a change of server address, login or role (docs/decisions/0020-dbt-parse-once-one-build-invocation.md).

dbt parses the whole project again (about a minute for its 500+ generic tests on 2 cores, two
under load) when its saved partial parse was made with another profile: the check hashes every
connection field (host, port, user, role, ...). What this project's parse produces depends only on
the target's name and type (jinja reads `target.type`) and on the database and schema every node
carries (tests/test_dbt_child.py keeps models and dbt_project.yml to those fields). So this entry
point hashes only those, and a run on another port, as another role or after a restart of the
warehouse reuses the parse. A change of database (a test's clone) still parses again.

It also keeps a thread's PostgreSQL connection open from one data test to the next
(:func:`reuse_test_connections`, docs/decisions/0096-dbt-test-connections-reused.md): dbt closes
its connection after every node, so each of the ~600 tests of a build paid a new server backend,
its login and `set role`, and a cold catalog cache.

Every dbt invocation of `gridcredit` (cli.run_dbt, the pipeline stages) goes through here.
"""

from __future__ import annotations

import pprint
import sys


def command() -> list[str]:
    """The command line that starts dbt through this module (then dbt's own arguments)."""
    return [sys.executable, "-m", "gridcredit.dbt_child"]


# Connection fields the parsed manifest depends on: nodes carry database and schema; the adapter
# type and target name pick the dispatched macros and `target.type` branches.
PARSE_FIELDS = ("type", "database", "schema")


def parse_relevant_profile(config) -> str:
    """The part of the profile that can change the parse result, as text for dbt's FileHash."""
    credentials = config.credentials
    fields = [("target_name", config.target_name)]
    fields += [(field, getattr(credentials, field, None)) for field in PARSE_FIELDS]
    return pprint.pformat(fields)


def narrow_profile_check() -> None:
    """Make dbt's partial-parse profile check compare parse_relevant_profile() only."""
    from dbt.contracts.files import FileHash
    from dbt.parser.manifest import ManifestLoader

    if getattr(ManifestLoader.build_manifest_state_check, "_gridcredit", False):
        return
    original = ManifestLoader.build_manifest_state_check

    def build_manifest_state_check(self):
        state = original(self)
        state.profile_hash = FileHash.from_contents(parse_relevant_profile(self.root_project))
        return state

    build_manifest_state_check._gridcredit = True
    ManifestLoader.build_manifest_state_check = build_manifest_state_check


def reuse_test_connections() -> None:
    """After a data test on PostgreSQL, roll back and keep the thread's connection for its next node.

    dbt's ``release()`` closes the connection after every node. A test changes no session state
    (no ``set``, no temporary table: dbt's test materialization creates its failures table, commits
    and selects), so the next node on that thread can use the same session: the role and options
    come from the profile and are the same for every node. Models keep dbt's behaviour (closed
    after each node): an incremental model's temporary tables live until its session ends. A
    connection the server closed, or one in a failed state, is closed as before.
    """
    from dbt.adapters.base.connections import BaseConnectionManager
    from dbt.adapters.contracts.connection import ConnectionState

    if getattr(BaseConnectionManager.release, "_gridcredit", False):
        return
    original = BaseConnectionManager.release

    def release(self) -> None:
        conn = self.get_if_exists()
        if (
            conn is not None
            and getattr(self, "TYPE", None) == "postgres"
            and (conn.name or "").startswith("test.")
            and conn.state == ConnectionState.OPEN
            and conn.handle is not None
            and not conn.handle.closed
        ):
            try:
                self.rollback_if_open()
                return
            except Exception:  # noqa: BLE001 - a connection that cannot roll back is closed below
                pass
        original(self)

    release._gridcredit = True
    BaseConnectionManager.release = release


def main(argv: list[str]) -> None:
    """Exactly the `dbt` console script (same exit codes), after narrow_profile_check() and
    reuse_test_connections()."""
    narrow_profile_check()
    reuse_test_connections()
    from dbt.cli.main import cli

    sys.argv[0] = "dbt"  # dbt logs sys.argv as the invocation command
    cli(args=argv, prog_name="dbt")


if __name__ == "__main__":
    main(sys.argv[1:])
