"""Application scorecards: optimal WOE binning (optbinning) + logistic regression, in points.

Higher score = lower risk. See ``ml/FORECAST_AND_SCORECARD.md``.
"""

from gridcredit.ml.scorecard._csv import (
    MIN_CLASS_ROWS,
    MIN_ROWS,
    ScorecardInputError,
    fit_scorecard_from_csv,
    ks_statistic,
)
from gridcredit.ml.scorecard._estimator import TABLE_COLUMNS, Scorecard
from gridcredit.ml.scorecard._sql import TABLE_PLACEHOLDER, scorecard_sql

__all__ = [
    "MIN_CLASS_ROWS",
    "MIN_ROWS",
    "TABLE_COLUMNS",
    "TABLE_PLACEHOLDER",
    "Scorecard",
    "ScorecardInputError",
    "fit_scorecard_from_csv",
    "ks_statistic",
    "scorecard_sql",
]
