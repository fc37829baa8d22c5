"""Behavioural credit score: WOE scorecard (optbinning + logistic regression) -> points -> 0-100 -> grade.

The scorecard itself is :class:`gridcredit.ml.scorecard.Scorecard` (monotonic optimal binning,
WOE, logistic regression, points scaling). This module trains it out of time on "bad within 12
months", turns points into the integer credit score and grade, applies the credit policy's
override rules and explains each score with the indicators that cost it the most points.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from gridcredit.ml import metrics as M
from gridcredit.ml.features import Dataset, plain_label
from gridcredit.ml.grades import apply_overrides, grade_for_score, points_to_score
from gridcredit.ml.modelling import Plan, labelled_plan, month_rows, output_keys
from gridcredit.ml.reasons import top_reasons
from gridcredit.ml.scorecard import Scorecard

MODEL_NAME = "credit_score"
OUTPUT_TABLE = "credit_scores"
SCORE_COLUMN = "score"


class CreditScoreModel:
    """A fitted scorecard with its points scale.

    Parameters
    ----------
    card : Scorecard
        Fitted on WOE-binned features.
    features : list of str
        Columns the card was fitted on (in order).
    """

    def __init__(self, card: Scorecard, features: list[str], learned_months=()):
        self.card = card
        self.features = list(features)
        self.learned_months = set(int(m) for m in learned_months)
        table = card.table_
        seen = table[table["count"] > 0]
        self.best_points_ = seen.groupby("variable")["points"].max().to_dict()

    def _X(self, frame: pd.DataFrame) -> pd.DataFrame:
        missing = [c for c in self.features if c not in frame.columns]
        if missing:
            raise KeyError(f"features missing for the credit scorecard: {missing}")
        return frame[self.features].astype(float)

    def points(self, frame: pd.DataFrame) -> np.ndarray:
        return self.card.predict_score(self._X(frame))

    def probability(self, frame: pd.DataFrame) -> np.ndarray:
        return self.card.predict_proba(self._X(frame))[:, 1]

    def points_lost(self, frame: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
        """Points below the best attainable bin, per selected variable (n_rows x n_selected)."""
        card = self.card
        selected = card.selected_features_
        woe = card.binning_process_.transform(
            self._X(frame), metric="woe", metric_missing="empirical", metric_special="empirical"
        )[selected].to_numpy(dtype=float)
        coefs = card.logistic_regression_.coef_[0]
        n = len(selected)
        intercept = float(card.logistic_regression_.intercept_[0])
        pts = -(woe * coefs + intercept / n) * card.factor_ + card.offset_ / n
        best = np.array([self.best_points_.get(v, np.nan) for v in selected])
        return np.maximum(best - pts, 0.0), list(selected)


def feature_labels(ds: Dataset, cfg: dict) -> dict[str, str]:
    overrides = cfg["inputs"].get("feature_labels") or {}
    return {f: plain_label(ds.feature_info.get(f, f), overrides) for f in ds.features}


def plan(ds: Dataset, cfg: dict) -> Plan:
    """Train on the train and validation months (a scorecard needs no calibration set)."""
    return labelled_plan(ds, cfg, MODEL_NAME, cfg[MODEL_NAME]["label"], ds.features, use_validation=False)


def fit(ds: Dataset, p: Plan, cfg: dict) -> CreditScoreModel:
    section = cfg[MODEL_NAME]
    params = dict(section.get("scorecard") or {})
    card = Scorecard(
        pdo=float(section["pdo"]),
        base_score=float(section["base_points"]),
        base_odds=float(section["base_odds"]),
        **params,
    )
    X = ds.frame.iloc[p.train_rows][p.features].astype(float)
    y = ds.frame.iloc[p.train_rows][p.label_column].to_numpy(dtype=int)
    card.fit(X, y)
    p.parameters = {
        "scorecard": params,
        "pdo": section["pdo"],
        "base_points": section["base_points"],
        "base_odds": section["base_odds"],
        "selected_features": list(card.selected_features_),
        "dropped_for_sign": list(card.dropped_for_sign_),
        "n_features_offered": len(p.features),
    }
    return CreditScoreModel(card, p.features, p.learned_months)


def evaluate(model: CreditScoreModel, ds: Dataset, p: Plan, cfg: dict) -> tuple[dict, pd.DataFrame]:
    """Out-of-time metrics on the test months and calibration by decile."""
    test = ds.frame.iloc[p.test_rows]
    y = test[p.label_column].to_numpy(dtype=float)
    prob = model.probability(test)
    metrics = M.classification_metrics(y, prob)
    score = points_to_score(model.points(test))
    grades = grade_for_score(score, cfg[MODEL_NAME]["grades"])
    by_grade = pd.DataFrame({"grade": grades, "y": y}).groupby("grade")["y"].agg(["size", "mean"])
    metrics["test_bad_rate_by_grade"] = {g: round(float(r["mean"]), 6) for g, r in by_grade.iterrows()}
    metrics["test_share_by_grade"] = {g: round(float(r["size"]) / len(y), 6) for g, r in by_grade.iterrows()}
    metrics["n_train"] = int(len(p.train_rows))
    if ds.in_arrears_column:
        metrics["baseline_in_arrears_auc"] = M.auc(y, test[ds.in_arrears_column].to_numpy(dtype=float))
    return metrics, M.calibration_by_decile(y, prob)


def score(model: CreditScoreModel, ds: Dataset, months, cfg: dict) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """Score, grades, overrides and reasons of every customer in ``months`` (and notes)."""
    section = cfg[MODEL_NAME]
    rows = month_rows(ds, months)
    part = ds.frame.iloc[rows]
    out = output_keys(ds, rows)
    points = model.points(part)
    out["score"] = points_to_score(points)
    out["points"] = np.round(points, 6)
    out["probability_bad"] = model.probability(part)
    out["model_grade"] = grade_for_score(out["score"].to_numpy(), section["grades"])
    outcome = apply_overrides(
        out["model_grade"].to_numpy(), part.reset_index(drop=True), section.get("overrides") or []
    )
    out["final_grade"] = outcome.final_grade
    out["override_reason"] = outcome.reasons
    lost, selected = model.points_lost(part)
    values = part[selected].to_numpy(dtype=float)
    reasons = top_reasons(
        lost,
        values,
        selected,
        feature_labels(ds, cfg),
        int(section.get("top_reasons", 3)),
        unit="points",
        min_contribution=0.5,
    )
    out = pd.concat([out.reset_index(drop=True), reasons], axis=1)
    out["is_in_training_window"] = out["_month_index"].isin(model.learned_months)
    notes = [f"override {name} skipped: {why}" for name, why in sorted(outcome.skipped.items())]
    return {OUTPUT_TABLE: out}, notes
