"""Credit score to grade, and the credit policy's override rules (final grade)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from gridcredit.ml.config import GRADE_ORDER, validate_grades, validate_overrides

DEFAULT_GRADES = [
    {"grade": "AAA", "min": 90, "max": 100},
    {"grade": "AA", "min": 80, "max": 90},
    {"grade": "A", "min": 70, "max": 80},
    {"grade": "B", "min": 60, "max": 70},
    {"grade": "C", "min": 0, "max": 60},
]


def points_to_score(points) -> np.ndarray:
    """Integer credit score 0-100: ``floor(points)`` clipped to [0, 100] (NaN -> 0)."""
    p = np.asarray(points, dtype=float)
    p = np.where(np.isnan(p), 0.0, p)
    return np.clip(np.floor(p), 0, 100).astype(int)


def grade_for_score(score, grades: list[dict] | None = None) -> np.ndarray:
    """Grade of each score: ``[min, max)`` per grade, the top grade including its max (100).

    Exactly 90 is AAA, 89.99 is AA, 60 is B, 59.99 is C (default cut-offs). Scores outside
    [0, 100] raise ValueError.
    """
    grades = validate_grades(grades or DEFAULT_GRADES)
    s = np.atleast_1d(np.asarray(score, dtype=float))
    if np.isnan(s).any() or (s < 0).any() or (s > 100).any():
        raise ValueError("scores must be numbers in [0, 100]")
    lowers = np.array([g["min"] for g in grades], dtype=float)  # ascending: C, B, A, AA, AAA
    idx = np.searchsorted(lowers, s, side="right") - 1
    names = np.array([g["grade"] for g in grades], dtype=object)
    return names[idx]


def worse_grade(a: str, b: str) -> str:
    return a if GRADE_ORDER.index(a) >= GRADE_ORDER.index(b) else b


@dataclass(frozen=True)
class OverrideOutcome:
    final_grade: np.ndarray
    reasons: np.ndarray  # "; "-joined reasons of the rules that lowered the grade (or None)
    fired: dict[str, np.ndarray]  # rule name -> bool mask (whether or not it changed the grade)
    skipped: dict[str, str]  # rule name -> why it could not be evaluated


def _condition_mask(frame: pd.DataFrame, cond: dict) -> np.ndarray:
    column = frame[cond["column"]]
    op = cond["op"]
    if op == "missing":
        return column.isna().to_numpy()
    value = cond.get("value")
    if op == "in":
        return column.isin(list(value)).to_numpy()
    if isinstance(value, bool):
        series = column.astype("boolean") if column.dtype != bool else column
        result = (series == value) if op == "==" else (series != value)
        return result.fillna(False).to_numpy(dtype=bool)
    numeric = pd.to_numeric(column, errors="coerce").astype(float)
    v = float(value)
    ops = {
        ">": numeric > v,
        ">=": numeric >= v,
        "<": numeric < v,
        "<=": numeric <= v,
        "==": numeric == v,
        "!=": numeric != v,
    }
    if op not in ops:
        raise ValueError(f"unknown operator {op!r}")
    return ops[op].fillna(False).to_numpy(dtype=bool)


def rule_columns(rule: dict) -> list[str]:
    return [c["column"] for c in (rule.get("when_any") or rule.get("when_all") or [])]


def apply_overrides(model_grade, frame: pd.DataFrame, rules: list[dict]) -> OverrideOutcome:
    """Apply the override rules to the model grades.

    Parameters
    ----------
    model_grade : array-like of str
        Grade from the score, one per row of ``frame``.
    frame : pandas.DataFrame
        Columns the rules read (features as of the same month).
    rules : list of dict
        ``{name, action: force|cap, grade, reason, when_any|when_all: [{column, op, value}]}``.
        ``force`` sets the grade; ``cap`` limits it to at most ``grade``. The worst outcome wins.

    Returns
    -------
    OverrideOutcome
        Final grades, the reasons of the rules that lowered a grade, each rule's firing mask,
        and the rules skipped because a column is absent.
    """
    validate_overrides(rules)
    grades = np.asarray(model_grade, dtype=object)
    n = len(grades)
    if n != len(frame):
        raise ValueError(f"model_grade has {n} values but frame has {len(frame)} rows")
    final = grades.copy()
    reasons: list[list[str]] = [[] for _ in range(n)]
    fired, skipped = {}, {}
    rank = {g: i for i, g in enumerate(GRADE_ORDER)}  # 0 = best
    for rule in rules:
        missing = [c for c in rule_columns(rule) if c not in frame.columns]
        if missing:
            skipped[rule["name"]] = f"columns not in the features: {', '.join(missing)}"
            continue
        masks = [_condition_mask(frame, cond) for cond in (rule.get("when_any") or rule.get("when_all"))]
        mask = np.logical_or.reduce(masks) if "when_any" in rule else np.logical_and.reduce(masks)
        fired[rule["name"]] = mask
        target = rank[rule["grade"]]
        for i in np.flatnonzero(mask):
            current = rank[grades[i]]
            # force: the grade becomes the rule's grade (and is recorded if it is worse than the
            # model grade); cap: only grades better than the cap are lowered.
            if target > current:
                reasons[i].append(rule["reason"])
                if target > rank[final[i]]:
                    final[i] = rule["grade"]
    joined = np.array(["; ".join(r) if r else None for r in reasons], dtype=object)
    return OverrideOutcome(final_grade=final, reasons=joined, fired=fired, skipped=skipped)


def score_from_probability(p_bad, pdo: float, base_points: float, base_odds: float) -> np.ndarray:
    """Points at good:bad odds ``(1-p)/p``: ``base_points + pdo * log2(odds / base_odds)``."""
    p = np.clip(np.asarray(p_bad, dtype=float), 1e-12, 1 - 1e-12)
    return base_points + pdo * np.log2(((1 - p) / p) / base_odds)


def probability_from_points(points, pdo: float, base_points: float, base_odds: float) -> np.ndarray:
    """Inverse of :func:`score_from_probability`."""
    odds = base_odds * np.power(2.0, (np.asarray(points, dtype=float) - base_points) / pdo)
    return 1.0 / (1.0 + odds)


__all__ = [
    "DEFAULT_GRADES",
    "OverrideOutcome",
    "apply_overrides",
    "grade_for_score",
    "points_to_score",
    "probability_from_points",
    "rule_columns",
    "score_from_probability",
    "worse_grade",
]
