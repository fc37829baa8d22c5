"""Where gridcredit keeps its local state and how it finds the warehouse.

Everything is derived from two environment variables:

* ``GRIDCREDIT_HOME``: the project-local state folder (default ``<project>/.gridcredit``) holding the
  embedded warehouse's settings, its generated secret and logs;
* ``WAREHOUSE_URL``: a ``postgresql://`` URL that replaces the embedded warehouse everywhere.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
CONFIG_FILE = PROJECT_ROOT / "gridcredit.yaml"


def home() -> Path:
    """Project-local state folder (created on demand)."""
    path = Path(os.environ.get("GRIDCREDIT_HOME", PROJECT_ROOT / ".gridcredit")).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass(frozen=True)
class IngestSettings:
    max_reject_rate: float
    default_encoding: str | None


@cache
def project_config() -> dict:
    """The one configuration file for pipeline settings that are not dbt seeds."""
    with CONFIG_FILE.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}


def ingest_settings() -> IngestSettings:
    section = project_config().get("ingest", {})
    rate = float(os.environ.get("GRIDCREDIT_MAX_REJECT_RATE", section.get("max_reject_rate", 0.01)))
    return IngestSettings(max_reject_rate=rate, default_encoding=section.get("encoding"))
