"""Arrears early warning: probability of being in arrears at the end of next month.

Gradient boosting (scikit-learn's HistGradientBoostingClassifier) trained on earlier months,
calibrated (Platt or isotonic) on the later validation months and tested on the latest labelled
months. Warnings at three levels: customer (red / orange / yellow by thresholds or collector
capacity), industry and region (segments whose mean probability is a multiple of the
portfolio's), and the economic environment (the portfolio's probability rising month over month,
many industries flagged at once).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.frozen import FrozenEstimator

from gridcredit.ml import metrics as M
from gridcredit.ml.credit import feature_labels
from gridcredit.ml.features import MONTH_INDEX, Dataset
from gridcredit.ml.modelling import Plan, labelled_plan, month_rows, output_keys
from gridcredit.ml.reasons import occlusion_contributions, top_reasons

MODEL_NAME = "arrears_warning"
OUTPUT_TABLE = "arrears_warnings"
SEGMENT_TABLE = "arrears_warnings_by_segment"
ENVIRONMENT_TABLE = "arrears_warnings_environment"
SCORE_COLUMN = "probability"
LEVEL_ORDER = ("red", "orange", "yellow", "none")


class ArrearsModel:
    """Boosted trees + calibrator; explains a probability by occlusion of its strongest features."""

    def __init__(
        self, gbm, calibrator, features: list[str], reference: np.ndarray, reason_columns: list[int], learned_months=()
    ):
        self.gbm = gbm
        self.calibrator = calibrator
        self.features = list(features)
        self.reference = reference
        self.reason_columns = list(reason_columns)
        self.learned_months = set(int(m) for m in learned_months)

    def _predict_matrix(self, X: np.ndarray) -> np.ndarray:
        if self.calibrator is not None:
            return self.calibrator.predict_proba(X)[:, 1]
        return self.gbm.predict_proba(X)[:, 1]

    def matrix(self, frame: pd.DataFrame) -> np.ndarray:
        missing = [c for c in self.features if c not in frame.columns]
        if missing:
            raise KeyError(f"features missing for the arrears model: {missing}")
        return frame[self.features].to_numpy(dtype=float)

    def probability(self, frame: pd.DataFrame) -> np.ndarray:
        return self._predict_matrix(self.matrix(frame))

    def contributions(self, frame: pd.DataFrame) -> np.ndarray:
        return occlusion_contributions(self._predict_matrix, self.matrix(frame), self.reference, self.reason_columns)


def plan(ds: Dataset, cfg: dict) -> Plan:
    return labelled_plan(ds, cfg, MODEL_NAME, cfg[MODEL_NAME]["label"], ds.features, use_validation=True)


def _strongest_features(predict, X: np.ndarray, reference: np.ndarray, k: int, seed: int) -> list[int]:
    """Columns whose occlusion moves predictions most (mean absolute change on a sample)."""
    rng = np.random.default_rng(seed)
    sample = X[np.sort(rng.choice(len(X), size=min(len(X), 3000), replace=False))]
    effect = occlusion_contributions(predict, sample, reference, list(range(X.shape[1])))
    strength = np.nanmean(np.abs(effect), axis=0)
    order = np.argsort(-strength, kind="stable")
    return [int(j) for j in order[:k] if strength[j] > 0]


def fit_classifier(X_train, y_train, X_val, y_val, gbm_params: dict, calibration: str, seed: int):
    """Boosted trees on train, calibrator on validation (None when validation has one class)."""
    gbm = HistGradientBoostingClassifier(random_state=seed, early_stopping=False, **gbm_params)
    gbm.fit(X_train, y_train.astype(int))
    calibrator = None
    if len(X_val) and len(np.unique(y_val)) == 2:
        calibrator = CalibratedClassifierCV(FrozenEstimator(gbm), method=calibration)
        calibrator.fit(X_val, y_val.astype(int))
    return gbm, calibrator


def fit(ds: Dataset, p: Plan, cfg: dict) -> ArrearsModel:
    section = cfg[MODEL_NAME]
    seed = int(cfg["discipline"]["seed"])
    frame = ds.frame
    X_train = frame.iloc[p.train_rows][p.features].to_numpy(dtype=float)
    y_train = frame.iloc[p.train_rows][p.label_column].to_numpy(dtype=float)
    X_val = frame.iloc[p.validation_rows][p.features].to_numpy(dtype=float)
    y_val = frame.iloc[p.validation_rows][p.label_column].to_numpy(dtype=float)
    gbm, calibrator = fit_classifier(X_train, y_train, X_val, y_val, dict(section["gbm"]), section["calibration"], seed)
    reference = np.nanmedian(np.where(np.isfinite(X_train), X_train, np.nan), axis=0)
    reference = np.where(np.isnan(reference), 0.0, reference)
    model = ArrearsModel(gbm, calibrator, p.features, reference, [], p.learned_months)
    X_ref = X_val if len(X_val) else X_train
    model.reason_columns = _strongest_features(
        model._predict_matrix, X_ref, reference, int(section.get("reason_features", 12)), seed
    )
    p.parameters = {
        "gbm": dict(section["gbm"]),
        "calibration": section["calibration"] if calibrator else None,
        "n_features": len(p.features),
        "reason_features": [p.features[j] for j in model.reason_columns],
    }
    return model


def evaluate(model: ArrearsModel, ds: Dataset, p: Plan, cfg: dict) -> tuple[dict, pd.DataFrame]:
    test = ds.frame.iloc[p.test_rows]
    y = test[p.label_column].to_numpy(dtype=float)
    prob = model.probability(test)
    metrics = M.classification_metrics(y, prob)
    metrics["n_train"] = int(len(p.train_rows))
    metrics["n_validation"] = int(len(p.validation_rows))
    if ds.in_arrears_column:
        persistence = test[ds.in_arrears_column].to_numpy(dtype=float)
        metrics["baseline_persistence_auc"] = M.auc(y, persistence)
        metrics["baseline_persistence_ks"] = M.ks(y, persistence)
        if metrics["auc"] is not None and metrics["baseline_persistence_auc"] is not None:
            metrics["auc_lift_over_persistence"] = metrics["auc"] - metrics["baseline_persistence_auc"]
    levels = assign_levels(prob, test[MONTH_INDEX].to_numpy(), cfg[MODEL_NAME]["levels"])
    metrics["test_rate_by_level"] = {
        lv: round(float(y[levels == lv].mean()), 6) for lv in LEVEL_ORDER if (levels == lv).any()
    }
    return metrics, M.calibration_by_decile(y, prob)


def assign_levels(prob: np.ndarray, month: np.ndarray, levels_cfg: dict) -> np.ndarray:
    """Warning level per row: by probability thresholds, or by collector capacity per month.

    With ``mode: capacity`` the ``red`` highest probabilities of each month are red, the next
    ``orange`` orange, the next ``yellow`` yellow (ties broken by row order, which is stable).
    """
    prob = np.asarray(prob, dtype=float)
    out = np.full(len(prob), "none", dtype=object)
    if levels_cfg["mode"] == "thresholds":
        th = levels_cfg["thresholds"]
        out[prob >= th["yellow"]] = "yellow"
        out[prob >= th["orange"]] = "orange"
        out[prob >= th["red"]] = "red"
        return out
    cap = levels_cfg["capacity"]
    month = np.asarray(month)
    for m in np.unique(month):
        idx = np.flatnonzero(month == m)
        order = idx[np.argsort(-prob[idx], kind="stable")]
        start = 0
        for level in ("red", "orange", "yellow"):
            n = int(cap[level])
            out[order[start : start + n]] = level
            start += n
    return out


def _segment_level(lift: float, customers: int, seg_cfg: dict) -> str:
    if customers < int(seg_cfg["min_customers"]) or not np.isfinite(lift):
        return "none"
    for level in ("red", "orange", "yellow"):
        if lift >= float(seg_cfg["lift"][level]):
            return level
    return "none"


def segment_warnings(customers: pd.DataFrame, ds: Dataset, cfg: dict) -> pd.DataFrame:
    """Industry and region warnings per month from customer probabilities."""
    seg_cfg = cfg[MODEL_NAME]["segments"]
    rows = []
    for month, part in customers.groupby("as_of_month", sort=True):
        portfolio = float(part["probability"].mean())
        for seg_type, column in sorted(ds.segments.items()):
            for code, seg in part.groupby(column, sort=True):
                mean = float(seg["probability"].mean())
                lift = mean / portfolio if portfolio > 0 else float("nan")
                level = _segment_level(lift, len(seg), seg_cfg)
                counts = seg["warning_level"].value_counts()
                reason = None
                if level != "none":
                    reason = (
                        f"{seg_type} {code}: mean arrears probability {100 * mean:.1f}% is "
                        f"{lift:.1f}x the portfolio's {100 * portfolio:.1f}%"
                    )
                rows.append(
                    {
                        "segment_type": seg_type,
                        "segment_code": str(code),
                        "as_of_month": month,
                        "customers": len(seg),
                        "mean_probability": mean,
                        "expected_customers_in_arrears": float(seg["probability"].sum()),
                        "portfolio_mean_probability": portfolio,
                        "lift": lift,
                        "red_customers": int(counts.get("red", 0)),
                        "orange_customers": int(counts.get("orange", 0)),
                        "yellow_customers": int(counts.get("yellow", 0)),
                        "warning_level": level,
                        "reason": reason,
                    }
                )
    return pd.DataFrame(rows)


def environment_warnings(
    model: ArrearsModel, ds: Dataset, months, segments: pd.DataFrame, cfg: dict, known: pd.Series | None = None
) -> pd.DataFrame:
    """Economic environment level: rise of the portfolio probability and breadth of industry warnings.

    ``known``: mean probability per month index already computed (the scored months); only the
    up to three months before them are predicted here.
    """
    env_cfg = cfg[MODEL_NAME]["environment"]
    months = sorted(int(m) for m in months)
    needed = sorted({m - k for m in months for k in range(0, 4)} & set(ds.months))
    known = known if known is not None else pd.Series(dtype=float)
    missing = [m for m in needed if m not in known.index]
    frame = ds.frame
    part = frame.iloc[month_rows(ds, needed)]
    by_month = known.copy()
    if missing:
        extra = frame.iloc[month_rows(ds, missing)]
        prob = pd.Series(model.probability(extra), index=extra.index)
        by_month = pd.concat([by_month, prob.groupby(extra[MONTH_INDEX]).mean()]).sort_index()
    activity_col = next((c for c in env_cfg.get("activity_columns", []) if c in frame.columns), None)
    activity = part[activity_col].groupby(part[MONTH_INDEX]).mean() if activity_col else None
    industry = segments[segments["segment_type"] == "industry"] if len(segments) else segments
    out = []
    month_dates = frame.drop_duplicates(MONTH_INDEX).set_index(MONTH_INDEX)[ds.month_col]
    for m in months:
        current = float(by_month.get(m, np.nan))
        previous = [float(by_month[k]) for k in (m - 1, m - 2, m - 3) if k in by_month.index]
        base = float(np.mean(previous)) if previous else float("nan")
        rise = current / base - 1 if previous and base > 0 else float("nan")
        date = month_dates[m].date()
        ind = industry[industry["as_of_month"] == date] if len(industry) else industry
        share = float(ind["warning_level"].isin(["red", "orange"]).mean()) if len(ind) else 0.0
        level, why = "none", []
        for lv in ("red", "orange", "yellow"):
            hit_rise = np.isfinite(rise) and rise >= float(env_cfg["rise"][lv])
            hit_share = share >= float(env_cfg["flagged_industry_share"][lv])
            if hit_rise or hit_share:
                level = lv
                if hit_rise:
                    why.append(f"portfolio arrears probability up {100 * rise:.0f}% on the previous 3 months")
                if hit_share:
                    why.append(f"{100 * share:.0f}% of industries flagged orange or red")
                break
        out.append(
            {
                "as_of_month": date,
                "customers": int((part[MONTH_INDEX] == m).sum()),
                "mean_probability": current,
                "previous_3_months_mean_probability": base if previous else None,
                "relative_rise": rise if np.isfinite(rise) else None,
                "flagged_industry_share": share,
                "activity_indicator": (
                    float(activity[m])
                    if activity is not None and m in activity.index and np.isfinite(activity[m])
                    else None
                ),
                "activity_indicator_column": activity_col,
                "warning_level": level,
                "reason": "; ".join(why) or None,
            }
        )
    return pd.DataFrame(out)


def score(
    model: ArrearsModel, ds: Dataset, months, cfg: dict, known_means: pd.Series | None = None
) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """Warnings of every customer in ``months``, segment and environment warnings (and notes).

    ``known_means``: mean probability per month index of months scored earlier in the same run
    (scoring month by month), so the environment level reads them instead of predicting them again.
    """
    section = cfg[MODEL_NAME]
    rows = month_rows(ds, months)
    part = ds.frame.iloc[rows]
    out = output_keys(ds, rows)
    prob = model.probability(part)
    out["probability"] = prob
    out["warning_level"] = assign_levels(prob, out[MONTH_INDEX].to_numpy(), section["levels"])
    # Rank 1 = highest probability of the month (ties: customer id order, as rows are sorted).
    out["risk_rank"] = out.groupby(MONTH_INDEX)["probability"].rank(method="first", ascending=False).astype(int)
    for seg_type, column in sorted(ds.segments.items()):
        out[f"{seg_type}_code"] = part[column].astype(str).to_numpy()
    warned = out["warning_level"].to_numpy() != "none"
    contrib = np.full((len(part), len(model.features)), np.nan)
    if warned.any():
        contrib[warned] = model.contributions(part.iloc[np.flatnonzero(warned)])
    reasons = top_reasons(
        contrib,
        model.matrix(part),
        model.features,
        feature_labels(ds, cfg),
        int(section.get("top_reasons", 3)),
        unit="probability",
        min_contribution=0.001,
        rows=warned,
    )
    out = pd.concat([out.reset_index(drop=True), reasons], axis=1)
    out["is_in_training_window"] = out[MONTH_INDEX].isin(model.learned_months)
    seg_input = out.copy()
    for seg_type, column in ds.segments.items():
        seg_input[column] = seg_input[f"{seg_type}_code"]
    segments = segment_warnings(seg_input, ds, cfg) if ds.segments else pd.DataFrame()
    known = out.groupby(MONTH_INDEX)["probability"].mean()
    if known_means is not None and len(known_means):
        known = pd.concat([known_means[~known_means.index.isin(known.index)], known]).sort_index()
    environment = environment_warnings(model, ds, months, segments, cfg, known)
    notes = [] if ds.segments else ["no industry/region columns found: segment warnings not computed"]
    return {OUTPUT_TABLE: out, SEGMENT_TABLE: segments, ENVIRONMENT_TABLE: environment}, notes
