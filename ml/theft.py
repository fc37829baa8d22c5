"""Theft suspicion: a monthly score per customer from consumption patterns, and the inspection list.

Two parts, blended by percentile within each month:

- supervised: gradient boosting on the consumption-pattern features (zero runs, drops against
  the customer's own baseline and peers, flat lines, missing and estimated reads, meter events),
  learning "theft confirmed by an inspection within N months" where inspections happened;
- unsupervised: an isolation forest on the same features, which also ranks customers nobody
  has inspected yet (inspection labels are few and biased towards past suspicion).

The ``inspection_capacity`` highest scores of each month form the inspection list.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier, IsolationForest

from gridcredit.ml import metrics as M
from gridcredit.ml.credit import feature_labels
from gridcredit.ml.features import MONTH_INDEX, Dataset, fingerprint_rows
from gridcredit.ml.modelling import Plan, gather_rows, labelled_plan, month_rows, output_keys, usable_features
from gridcredit.ml.reasons import occlusion_contributions, top_reasons
from gridcredit.ml.splits import InsufficientHistory, out_of_time_split

MODEL_NAME = "theft_suspicion"
OUTPUT_TABLE = "theft_suspicion"
SCORE_COLUMN = "suspicion_score"


def theft_features(features: list[str], patterns: list[str]) -> list[str]:
    """Features whose name matches one of the patterns (all features when none match)."""
    regex = re.compile("|".join(patterns), re.IGNORECASE) if patterns else None
    chosen = [f for f in features if regex and regex.search(f)]
    return chosen or list(features)


def _percentile_by_month(values: np.ndarray, month: np.ndarray) -> np.ndarray:
    """Rank percentile (0-1] within each month; ties share the average rank."""
    s = pd.Series(values)
    return s.groupby(np.asarray(month)).rank(method="average", pct=True).to_numpy()


class TheftModel:
    def __init__(self, features, gbm, forest, weight: float, reference, reason_columns, learned_months=()):
        self.features = list(features)
        self.gbm = gbm
        self.forest = forest
        self.weight = float(weight if gbm is not None else 0.0)
        self.reference = reference
        self.reason_columns = list(reason_columns)
        self.learned_months = set(int(m) for m in learned_months)

    def matrix(self, frame: pd.DataFrame) -> np.ndarray:
        missing = [c for c in self.features if c not in frame.columns]
        if missing:
            raise KeyError(f"features missing for the theft model: {missing}")
        return frame[self.features].to_numpy(dtype=float)

    def _parts(self, X: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
        supervised = self.gbm.predict_proba(X)[:, 1] if self.gbm is not None else None
        filled = np.where(np.isnan(X), self.reference, X)
        anomaly = -self.forest.score_samples(filled)  # higher = more anomalous
        return supervised, anomaly

    def raw_score(self, X: np.ndarray) -> np.ndarray:
        """Month-free blend used for explanations: weight * P(theft) + (1 - weight) * squashed anomaly."""
        supervised, anomaly = self._parts(X)
        squashed = 1 / (1 + np.exp(-8 * (anomaly - 0.5)))
        if supervised is None:
            return squashed
        return self.weight * supervised + (1 - self.weight) * squashed

    def score(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """Suspicion score 0-1 (percentile blend within month), supervised probability, anomaly."""
        X = self.matrix(frame)
        supervised, anomaly = self._parts(X)
        month = frame[MONTH_INDEX].to_numpy()
        blended = (1 - self.weight) * _percentile_by_month(anomaly, month)
        if supervised is not None:
            blended = blended + self.weight * _percentile_by_month(supervised, month)
        return blended, supervised, anomaly


def plan(ds: Dataset, cfg: dict) -> Plan:
    """Supervised plan when inspections confirmed enough thefts; otherwise anomaly-only.

    The anomaly-only plan learns from every month but the last ``test_months`` and is tested on
    those (precision at capacity where inspection outcomes exist, simulator truth when given).
    """
    section = cfg[MODEL_NAME]
    features = theft_features(ds.features, section.get("feature_patterns") or [])
    try:
        p = labelled_plan(ds, cfg, MODEL_NAME, section["label"], features, use_validation=False)
        p.parameters["mode"] = "supervised+anomaly"
        return p
    except InsufficientHistory as error:
        why = str(error)
    disc = cfg["discipline"]
    split = out_of_time_split(
        ds.months, disc["train_months"], 0, disc["test_months"], disc["min_train_months"], use_validation=False
    )
    data, (train, test) = gather_rows(
        ds, [(split.train, None, int(disc["max_train_rows"])), (split.test, None, None)], int(disc["seed"])
    )
    features, _ = usable_features(data.frame, train, features)
    if not features:
        raise InsufficientHistory("no consumption-pattern feature has a value in the training months")
    label = ds.labels.get(section["label"])
    p = Plan(
        model_name=MODEL_NAME,
        split=split,
        label_column=label,
        train_rows=train,
        validation_rows=np.array([], dtype=int),
        test_rows=test,
        features=features,
        data_fingerprint=fingerprint_rows(
            data.frame, np.concatenate([train, test]), [ds.customer_col, ds.month_col, *features]
        ),
        notes=[f"anomaly score only: {why}"],
        data=data,
    )
    p.parameters["mode"] = "anomaly"
    return p


def fit(ds: Dataset, p: Plan, cfg: dict) -> TheftModel:
    section = cfg[MODEL_NAME]
    seed = int(cfg["discipline"]["seed"])
    if p.parameters.get("mode") == "anomaly":
        model = unsupervised_model(ds, cfg, p.features, p.split.train, rows=p.train_rows)
        p.parameters.update(
            {
                "isolation_forest": dict(section.get("isolation_forest") or {}),
                "features": p.features,
                "inspection_capacity": section["inspection_capacity"],
            }
        )
        return model
    X = ds.frame.iloc[p.train_rows][p.features].to_numpy(dtype=float)
    y = ds.frame.iloc[p.train_rows][p.label_column].to_numpy(dtype=int)
    gbm = HistGradientBoostingClassifier(random_state=seed, early_stopping=False, **dict(section["gbm"]))
    gbm.fit(X, y)
    reference = np.nanmedian(np.where(np.isfinite(X), X, np.nan), axis=0)
    reference = np.where(np.isnan(reference), 0.0, reference)
    iso = dict(section.get("isolation_forest") or {})
    forest = IsolationForest(
        random_state=seed,
        n_estimators=int(iso.get("n_estimators", 200)),
        max_samples=min(int(iso.get("max_samples", 4096)), len(X)),
    )
    forest.fit(np.where(np.isnan(X), reference, X))
    model = TheftModel(p.features, gbm, forest, float(section["supervised_weight"]), reference, [], p.learned_months)
    rng = np.random.default_rng(seed)
    sample = X[np.sort(rng.choice(len(X), size=min(len(X), 3000), replace=False))]
    effect = occlusion_contributions(model.raw_score, sample, reference, list(range(len(p.features))))
    strength = np.nanmean(np.abs(effect), axis=0)
    order = np.argsort(-strength, kind="stable")
    model.reason_columns = [int(j) for j in order[: int(section.get("reason_features", 10))] if strength[j] > 0]
    p.parameters.update(
        {
            "gbm": dict(section["gbm"]),
            "isolation_forest": iso,
            "supervised_weight": section["supervised_weight"],
            "features": p.features,
            "inspection_capacity": section["inspection_capacity"],
        }
    )
    return model


def unsupervised_model(ds: Dataset, cfg: dict, features: list[str], months, rows=None) -> TheftModel:
    """Isolation forest only (no usable inspection labels)."""
    seed = int(cfg["discipline"]["seed"])
    rows = month_rows(ds, months) if rows is None else rows
    X = ds.frame.iloc[rows][features].to_numpy(dtype=float)
    reference = np.nanmedian(np.where(np.isfinite(X), X, np.nan), axis=0)
    reference = np.where(np.isnan(reference), 0.0, reference)
    iso = dict(cfg[MODEL_NAME].get("isolation_forest") or {})
    forest = IsolationForest(
        random_state=seed,
        n_estimators=int(iso.get("n_estimators", 200)),
        max_samples=min(int(iso.get("max_samples", 4096)), len(X)),
    )
    forest.fit(np.where(np.isnan(X), reference, X))
    model = TheftModel(features, None, forest, 0.0, reference, [], months)
    rng = np.random.default_rng(seed)
    sample = X[np.sort(rng.choice(len(X), size=min(len(X), 3000), replace=False))]
    effect = occlusion_contributions(model.raw_score, sample, reference, list(range(len(features))))
    strength = np.nanmean(np.abs(effect), axis=0)
    order = np.argsort(-strength, kind="stable")
    k = int(cfg[MODEL_NAME].get("reason_features", 10))
    model.reason_columns = [int(j) for j in order[:k] if strength[j] > 0]
    return model


def evaluate(
    model: TheftModel, ds: Dataset, p: Plan, cfg: dict, truth: pd.DataFrame | None = None
) -> tuple[dict, pd.DataFrame]:
    """Precision at capacity on the test months (labels; simulator truth when given) and AUC."""
    capacity = int(cfg[MODEL_NAME]["inspection_capacity"])
    test = ds.frame.iloc[p.test_rows]
    y = test[p.label_column].to_numpy(dtype=float) if p.label_column in test.columns else np.full(len(test), np.nan)
    blended, supervised, _ = model.score(test)
    frame = pd.DataFrame({"m": test[MONTH_INDEX].to_numpy(), "y": y, "s": blended})
    precision, ceiling = M.precision_at_capacity_by_month(frame, "m", "y", "s", capacity)
    metrics = {
        "precision_at_capacity": precision,
        "precision_at_capacity_ceiling": ceiling,
        "inspection_capacity": capacity,
        **M.classification_metrics(y, blended),
    }
    if supervised is not None:
        metrics["supervised_auc"] = M.auc(y, supervised)
    metrics["n_train"] = int(len(p.train_rows))
    metrics["mode"] = p.parameters.get("mode")
    if p.label_column in ds.frame.columns:
        metrics["n_train_positives"] = int(ds.frame.iloc[p.train_rows][p.label_column].sum())
    if truth is not None:
        metrics.update(truth_metrics(test, blended, truth, ds, capacity))
    return metrics, M.calibration_by_decile(y, blended)


def truth_metrics(rows: pd.DataFrame, score: np.ndarray, truth: pd.DataFrame, ds: Dataset, capacity: int) -> dict:
    """Precision at capacity against the simulator's truth (theft active that month) and its ceiling."""
    keyed = pd.DataFrame(
        {"customer_id": rows[ds.customer_col].to_numpy(), "m": rows[MONTH_INDEX].to_numpy(), "s": score}
    )
    merged = keyed.merge(truth, on=["customer_id", "m"], how="left")
    merged["theft_active"] = merged["theft_active"].fillna(0).astype(float)
    precision, ceiling = M.precision_at_capacity_by_month(merged, "m", "theft_active", "s", capacity)
    return {
        "truth_precision_at_capacity": precision,
        "truth_precision_at_capacity_ceiling": ceiling,
        "truth_auc": M.auc(merged["theft_active"], merged["s"]),
        "truth_thieves_per_month": float(merged.groupby("m")["theft_active"].sum().mean()),
    }


def score(model: TheftModel, ds: Dataset, months, cfg: dict) -> tuple[dict[str, pd.DataFrame], list[str]]:
    section = cfg[MODEL_NAME]
    capacity = int(section["inspection_capacity"])
    rows = month_rows(ds, months)
    part = ds.frame.iloc[rows]
    out = output_keys(ds, rows)
    blended, supervised, anomaly = model.score(part)
    out["suspicion_score"] = blended
    out["supervised_probability"] = supervised if supervised is not None else np.nan
    out["anomaly_score"] = anomaly
    out["suspicion_rank"] = (
        out.groupby(MONTH_INDEX)["suspicion_score"].rank(method="first", ascending=False).astype(int)
    )
    out["is_on_inspection_list"] = out["suspicion_rank"] <= capacity
    for seg_type, column in sorted(ds.segments.items()):
        out[f"{seg_type}_code"] = part[column].astype(str).to_numpy()
    listed = out["is_on_inspection_list"].to_numpy()
    contrib = np.full((len(part), len(model.features)), np.nan)
    X = model.matrix(part)
    if listed.any():
        contrib[listed] = occlusion_contributions(model.raw_score, X[listed], model.reference, model.reason_columns)
    reasons = top_reasons(
        contrib,
        X,
        model.features,
        feature_labels(ds, cfg),
        int(section.get("top_reasons", 3)),
        unit="probability",
        min_contribution=0.001,
        rows=listed,
    )
    out = pd.concat([out.reset_index(drop=True), reasons], axis=1)
    out["is_in_training_window"] = out[MONTH_INDEX].isin(model.learned_months)
    notes = [] if model.gbm is not None else ["no usable inspection labels: anomaly score only"]
    return {OUTPUT_TABLE: out}, notes


__all__ = [
    "InsufficientHistory",
    "TheftModel",
    "evaluate",
    "fit",
    "plan",
    "score",
    "theft_features",
    "truth_metrics",
    "unsupervised_model",
]
