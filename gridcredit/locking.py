"""One pipeline command at a time, enforced by a PostgreSQL advisory lock.

The lock lives in the warehouse itself, so it also covers two machines pointing at the same
WAREHOUSE_URL, and it disappears with the session when a command is killed (no stale lock file).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from gridcredit import warehouse

# Any constant bigint; "gridcred" in ASCII.
PIPELINE_LOCK_KEY = 0x6772696463726564


class PipelineBusyError(RuntimeError):
    """Another pipeline command holds the lock."""


@contextmanager
def pipeline_lock(command: str, conn: warehouse.Connection | None = None) -> Iterator[None]:
    """Hold the pipeline lock for the duration of ``command``; refuse at once if it is taken."""
    session = warehouse.connect(conn, autocommit=True)
    try:
        session.execute("select set_config('application_name', %s, false)", [f"gridcredit:{command}"])
        acquired = session.execute("select pg_try_advisory_lock(%s)", [PIPELINE_LOCK_KEY]).fetchone()[0]
        if not acquired:
            holder = session.execute(
                """
                select activity.application_name, activity.pid, activity.backend_start
                from pg_locks as locks
                join pg_stat_activity as activity on activity.pid = locks.pid
                where locks.locktype = 'advisory'
                  and locks.granted
                  and ((locks.classid::bigint << 32) | locks.objid::bigint) = %s
                """,
                [PIPELINE_LOCK_KEY],
            ).fetchone()
            who = (
                f"{holder[0]} (server pid {holder[1]}, since {holder[2]:%Y-%m-%d %H:%M:%S})"
                if holder
                else "another command"
            )
            raise PipelineBusyError(
                f"refusing to start `{command}`: {who} is running a pipeline command on this "
                "warehouse. Wait for it to finish (or stop it) and try again."
            )
        yield
    finally:
        session.close()
