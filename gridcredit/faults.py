"""Named fault points for crash tests: ``GRIDCREDIT_KILL_AT=<stage>:<point>`` SIGKILLs the process.

A point is a name (``publish:commit``) or a count (``dbt:12``: when the 12th dbt node has
finished). Only tests set the variable; unset, a fault point costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal


def kill_requested(stage: str, point: str | int) -> bool:
    return os.environ.get("GRIDCREDIT_KILL_AT") == f"{stage}:{point}"


def fault_point(stage: str, point: str | int) -> None:
    """SIGKILL this process (no cleanup, no atexit) when ``GRIDCREDIT_KILL_AT`` names this point."""
    if kill_requested(stage, point):
        os.kill(os.getpid(), signal.SIGKILL)
