"""gridcredit.ml: credit score and grade, arrears early warning, theft suspicion, consumption forecast.

Public names are imported lazily (PEP 562), so ``import gridcredit.ml.scorecard`` stays cheap.
See ``ml/README.md``.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "BuildArea": "gridcredit.ml.writeback",
    "ConfigError": "gridcredit.ml.config",
    "InsufficientHistory": "gridcredit.ml.splits",
    "apply_overrides": "gridcredit.ml.grades",
    "grade_for_score": "gridcredit.ml.grades",
    "load_config": "gridcredit.ml.config",
    "out_of_time_split": "gridcredit.ml.splits",
    "points_to_score": "gridcredit.ml.grades",
    "promotion_decision": "gridcredit.ml.registry",
    "psi": "gridcredit.ml.monitoring",
    "score_all": "gridcredit.ml.scoring",
    "validate_taiwan": "gridcredit.ml.validate_taiwan",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'gridcredit.ml' has no attribute {name!r}")
