"""The ML configuration (``ml/config.yaml``): loading, validation, fingerprint.

One file holds every setting of the ML step (grade cut-offs, points scale, override rules,
warning thresholds or collector capacity, inspection capacity, PSI thresholds, promotion
tolerances). ``GRIDCREDIT_ML_CONFIG`` points at another file (tests, what-if runs).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import yaml

CONFIG_PATH = Path(__file__).resolve().parent / "config.yaml"

MODEL_NAMES = ("credit_score", "arrears_warning", "theft_suspicion", "consumption_forecast")
GRADE_ORDER = ("AAA", "AA", "A", "B", "C")  # best first
OVERRIDE_ACTIONS = ("force", "cap")
CONDITION_OPS = (">", ">=", "<", "<=", "==", "!=", "in", "missing")
LEVEL_MODES = ("thresholds", "capacity")
LEVELS = ("red", "orange", "yellow")
CALIBRATIONS = ("sigmoid", "isotonic")


class ConfigError(ValueError):
    """ml/config.yaml is malformed; the message names the setting."""


def _require(section: dict, key: str, where: str) -> Any:
    if not isinstance(section, dict) or key not in section:
        raise ConfigError(f"ml config: {where}.{key} is missing")
    return section[key]


def _number(value: Any, where: str, low: float | None = None, high: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"ml config: {where} must be a number, got {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ConfigError(f"ml config: {where} must be between {low} and {high}, got {value!r}")
    return float(value)


def validate_grades(grades: list[dict]) -> list[dict]:
    """Check grade cut-offs: the five grades, contiguous, covering [0, 100]."""
    if not isinstance(grades, list) or not grades:
        raise ConfigError("ml config: credit_score.grades must be a list of {grade, min, max}")
    names = [g.get("grade") for g in grades]
    if len(names) != len(GRADE_ORDER) or set(names) != set(GRADE_ORDER):
        raise ConfigError(f"ml config: credit_score.grades must list each of {list(GRADE_ORDER)} once, got {names}")
    ordered = sorted(grades, key=lambda g: _number(g.get("min"), f"grade {g.get('grade')}.min", 0, 100))
    if ordered[0]["min"] != 0 or ordered[-1]["max"] != 100:
        raise ConfigError("ml config: credit_score.grades must cover 0..100")
    for lower, upper in zip(ordered, ordered[1:], strict=False):
        if lower["max"] != upper["min"]:
            raise ConfigError(
                f"ml config: grade {lower['grade']} ends at {lower['max']} "
                f"but {upper['grade']} starts at {upper['min']}"
            )
    if [g["grade"] for g in ordered] != list(reversed(GRADE_ORDER)):
        raise ConfigError("ml config: grades must rise in the order C < B < A < AA < AAA")
    return ordered


def _validate_condition(cond: dict, where: str) -> None:
    if not isinstance(cond, dict) or "column" not in cond or "op" not in cond:
        raise ConfigError(f"ml config: {where} must be {{column, op, value}}")
    if cond["op"] not in CONDITION_OPS:
        raise ConfigError(f"ml config: {where}.op must be one of {list(CONDITION_OPS)}, got {cond['op']!r}")
    if cond["op"] != "missing" and "value" not in cond:
        raise ConfigError(f"ml config: {where}.value is missing")


def validate_overrides(rules: list[dict]) -> None:
    names = set()
    for i, rule in enumerate(rules or []):
        where = f"credit_score.overrides[{i}]"
        for key in ("name", "action", "grade", "reason"):
            _require(rule, key, where)
        if rule["name"] in names:
            raise ConfigError(f"ml config: override name {rule['name']!r} used twice")
        names.add(rule["name"])
        if rule["action"] not in OVERRIDE_ACTIONS:
            raise ConfigError(f"ml config: {where}.action must be one of {list(OVERRIDE_ACTIONS)}")
        if rule["grade"] not in GRADE_ORDER:
            raise ConfigError(f"ml config: {where}.grade must be one of {list(GRADE_ORDER)}")
        conditions = rule.get("when_any") or rule.get("when_all")
        if not conditions or ("when_any" in rule and "when_all" in rule):
            raise ConfigError(f"ml config: {where} needs exactly one of when_any / when_all")
        for j, cond in enumerate(conditions):
            _validate_condition(cond, f"{where}.conditions[{j}]")


def validate_config(cfg: dict) -> dict:
    """Raise :class:`ConfigError` naming the first bad setting; return ``cfg``."""
    for section in (
        "inputs",
        "discipline",
        "credit_score",
        "arrears_warning",
        "theft_suspicion",
        "consumption_forecast",
        "monitoring",
    ):
        _require(cfg, section, "root")
    inputs = cfg["inputs"]
    for key in ("features_table", "labels_table", "keys", "labels", "label_horizon_months"):
        _require(inputs, key, "inputs")
    if len(inputs["keys"]) != 2:
        raise ConfigError("ml config: inputs.keys must be [customer column, as-of month column]")
    for role in ("arrears_next_month", "bad_within_12_months", "theft_within_n_months"):
        _require(inputs["labels"], role, "inputs.labels")
        _number(
            _require(inputs["label_horizon_months"], role, "inputs.label_horizon_months"),
            f"inputs.label_horizon_months.{role}",
            0,
            60,
        )
    disc = cfg["discipline"]
    for key in (
        "seed",
        "backfill_months",
        "train_months",
        "validation_months",
        "test_months",
        "min_train_months",
        "min_positives",
        "max_train_rows",
        "promotion",
    ):
        _require(disc, key, "discipline")
    for name in MODEL_NAMES:
        gate = _require(disc["promotion"], name, "discipline.promotion")
        for key in ("metric", "higher_is_better", "tolerance"):
            _require(gate, key, f"discipline.promotion.{name}")
        _number(gate["tolerance"], f"discipline.promotion.{name}.tolerance", 0, 1)
    every = _number(disc.get("retrain_every_months", 1), "discipline.retrain_every_months", 1, 120)
    batch = _number(disc.get(SCORE_BATCH_KEY, 100_000), f"discipline.{SCORE_BATCH_KEY}", 1, 10**9)
    if batch != int(batch):
        raise ConfigError(f"ml config: discipline.{SCORE_BATCH_KEY} must be a whole number of rows")
    if every != int(every):
        raise ConfigError("ml config: discipline.retrain_every_months must be a whole number of months")
    credit = cfg["credit_score"]
    for key in ("pdo", "base_odds"):
        if _number(_require(credit, key, "credit_score"), f"credit_score.{key}") <= 0:
            raise ConfigError(f"ml config: credit_score.{key} must be > 0")
    _number(_require(credit, "base_points", "credit_score"), "credit_score.base_points")
    credit["grades"] = validate_grades(_require(credit, "grades", "credit_score"))
    validate_overrides(credit.get("overrides", []))
    levels = cfg["arrears_warning"]["levels"]
    if levels.get("mode") not in LEVEL_MODES:
        raise ConfigError(f"ml config: arrears_warning.levels.mode must be one of {list(LEVEL_MODES)}")
    th = levels["thresholds"]
    for level in LEVELS:
        _number(
            _require(th, level, "arrears_warning.levels.thresholds"), f"arrears_warning.levels.thresholds.{level}", 0, 1
        )
        _number(
            _require(levels["capacity"], level, "arrears_warning.levels.capacity"),
            f"arrears_warning.levels.capacity.{level}",
            0,
        )
    if not th["red"] >= th["orange"] >= th["yellow"]:
        raise ConfigError("ml config: arrears_warning.levels.thresholds must satisfy red >= orange >= yellow")
    if cfg["arrears_warning"].get("calibration") not in CALIBRATIONS:
        raise ConfigError(f"ml config: arrears_warning.calibration must be one of {list(CALIBRATIONS)}")
    _number(cfg["theft_suspicion"]["inspection_capacity"], "theft_suspicion.inspection_capacity", 1)
    _number(cfg["theft_suspicion"]["supervised_weight"], "theft_suspicion.supervised_weight", 0, 1)
    psi = cfg["monitoring"]["psi_thresholds"]
    if not 0 < psi["investigate"] < psi["act"]:
        raise ConfigError("ml config: monitoring.psi_thresholds must satisfy 0 < investigate < act")
    return cfg


def load_config(path: str | Path | None = None, overrides: dict | None = None) -> dict:
    """The validated ML configuration.

    Parameters
    ----------
    path : str or Path, optional
        Config file; default ``GRIDCREDIT_ML_CONFIG`` or ``ml/config.yaml``.
    overrides : dict, optional
        Nested values merged over the file (tests, what-if runs).

    Returns
    -------
    dict
        The configuration, validated (grades sorted by their lower bound).
    """
    path = Path(path or os.environ.get("GRIDCREDIT_ML_CONFIG") or CONFIG_PATH)
    with path.open(encoding="utf-8") as handle:
        cfg = yaml.safe_load(handle) or {}
    if overrides:
        cfg = deep_merge(cfg, overrides)
    return validate_config(cfg)


def deep_merge(base: dict, extra: dict) -> dict:
    """A copy of ``base`` with ``extra`` merged in (dicts merged, everything else replaced)."""
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def config_fingerprint(cfg: dict) -> str:
    """sha256 of the configuration's canonical JSON.

    The retrain cadence (``discipline.retrain_every_months``) is left out: it says when to train,
    not how, so changing it does not by itself make a new model version (ADR 0035). So is the
    scoring batch size (``discipline.score_batch_rows``): it bounds memory and changes no output
    (ADR 0036).
    """
    unversioned = {RETRAIN_KEY, SCORE_BATCH_KEY}
    canonical = {
        **cfg,
        "discipline": {k: v for k, v in (cfg.get("discipline") or {}).items() if k not in unversioned},
    }
    return hashlib.sha256(json.dumps(canonical, sort_keys=True, default=str).encode()).hexdigest()


RETRAIN_KEY = "retrain_every_months"
SCORE_BATCH_KEY = "score_batch_rows"
