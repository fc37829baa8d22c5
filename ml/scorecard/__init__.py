"""Application scorecards: optimal WOE binning (optbinning) + logistic regression, in points.

Higher score = lower risk. See ``ml/FORECAST_AND_SCORECARD.md``.

The names below are imported on first use (PEP 562): ``gridcredit`` mounts ``scorecard.cli`` in
every CLI call, and importing optbinning, scikit-learn and scipy up front cost every command
(``gridcredit ingest`` included) several seconds of start-up, over a minute on a loaded machine.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "MIN_CLASS_ROWS": "_csv",
    "MIN_ROWS": "_csv",
    "ScorecardInputError": "_csv",
    "fit_scorecard_from_csv": "_csv",
    "ks_statistic": "_csv",
    "TABLE_COLUMNS": "_estimator",
    "Scorecard": "_estimator",
    "TABLE_PLACEHOLDER": "_sql",
    "scorecard_sql": "_sql",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
