"""Model registry: run records, the current version of each model, artifacts, the promotion gate."""

from __future__ import annotations

import hashlib
import pickle
from dataclasses import dataclass
from pathlib import Path

import psycopg

ML_PACKAGE_DIR = Path(__file__).resolve().parent


def code_fingerprint(root: Path = ML_PACKAGE_DIR) -> str:
    """sha256 over the ML package's Python sources (path and content), in path order."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    reason: str


def promotion_decision(
    new_value: float | None,
    current_value: float | None,
    metric: str,
    higher_is_better: bool,
    tolerance: float,
    has_current: bool = True,
) -> GateDecision:
    """Whether a new model version replaces the current one.

    The new version is promoted unless its out-of-time ``metric`` is worse than the current
    version's (scored on the same test rows) by more than ``tolerance`` (absolute for AUC and
    precision; relative for error ratios, where ``higher_is_better`` is False). When neither
    version has the metric (no labelled outcome in the test months) the new version is promoted
    and the reason says no comparison was possible; when only the current one has it, the current
    version stays.

    Parameters
    ----------
    new_value, current_value : float or None
        Metric of the new and of the current version on the new test months.
    metric : str
        Name used in the reason.
    higher_is_better : bool
        True for AUC / precision, False for errors.
    tolerance : float
        Allowed deterioration.
    has_current : bool
        False when there is no current version (the first one is always promoted).
    """
    if not has_current:
        return GateDecision(True, "first version of this model")
    if new_value is None and current_value is None:
        # Neither version can be measured on the test months (e.g. the theft model before any
        # inspection outcome exists): there is no evidence that the new one is worse, and it has
        # learned from the more recent window, so it replaces the current one (ADR 0030).
        return GateDecision(
            True,
            f"promoted without a comparison: neither the new nor the current version has a {metric} "
            "on the test months (no labelled outcomes there); the newer training window is kept",
        )
    if new_value is None:
        return GateDecision(False, f"kept the current version: the new version has no {metric} on its test months")
    if current_value is None:
        return GateDecision(
            True,
            f"promoted: the current version cannot be measured on the new test months (new {metric} {new_value:.4f})",
        )
    if higher_is_better:
        floor = current_value - tolerance
        if new_value >= floor:
            return GateDecision(
                True, f"promoted: {metric} {new_value:.4f} vs current {current_value:.4f} (tolerance {tolerance})"
            )
        return GateDecision(
            False,
            f"kept the current version: new {metric} {new_value:.4f} is worse than "
            f"current {current_value:.4f} by more than {tolerance}",
        )
    ceiling = current_value * (1 + tolerance)
    if new_value <= ceiling:
        return GateDecision(
            True, f"promoted: {metric} {new_value:.4f} vs current {current_value:.4f} (tolerance {tolerance:.0%})"
        )
    return GateDecision(
        False,
        f"kept the current version: new {metric} {new_value:.4f} is worse than "
        f"current {current_value:.4f} by more than {tolerance:.0%}",
    )


def get_run(pg: psycopg.Connection, run_id: str) -> dict | None:
    row = pg.execute(
        "select run_id, model_name, model_version, status, status_reason, metrics, parameters, created_at, "
        "is_current, compared_with_run_id, code_fingerprint, config_fingerprint from ml.model_runs where run_id = %s",
        [run_id],
    ).fetchone()
    if row is None:
        return None
    keys = (
        "run_id",
        "model_name",
        "model_version",
        "status",
        "status_reason",
        "metrics",
        "parameters",
        "created_at",
        "is_current",
        "compared_with_run_id",
        "code_fingerprint",
        "config_fingerprint",
    )
    return dict(zip(keys, row, strict=True))


def current_run(pg: psycopg.Connection, model_name: str) -> dict | None:
    """The version currently used to score new months (null if none was promoted)."""
    row = pg.execute("select run_id from ml.model_runs where model_name = %s and is_current", [model_name]).fetchone()
    return get_run(pg, row[0]) if row else None


def last_trained_run(pg: psycopg.Connection, model_name: str) -> dict | None:
    """The model's latest trained version, promoted or rejected: where the retrain cadence counts from."""
    row = pg.execute(
        "select run_id from ml.model_runs where model_name = %s order by created_at desc, run_id desc limit 1",
        [model_name],
    ).fetchone()
    return get_run(pg, row[0]) if row else None


@dataclass(frozen=True)
class RetrainDecision:
    retrain: bool
    reason: str


def retrain_decision(
    *,
    current: dict | None,
    last_trained: dict | None,
    latest_month: str,
    code_fingerprint: str,
    config_fingerprint: str,
    every_months: int,
    forced: bool = False,
) -> RetrainDecision:
    """Whether this run trains a new version or scores the new months with the current one (ADR 0035).

    A new version is trained when asked (``forced``: ``--retrain``), when there is no current
    version, when the code or configuration changed since the last training, when the data ends
    before the month the last training saw, and on the cadence: ``every_months`` after the last
    training (``data_last_month`` in its parameters, ``YYYY-MM``). A drifting score (PSI of the
    current version past the "act" threshold) is checked after scoring, in the scoring step.

    Parameters
    ----------
    current, last_trained : dict or None
        Run records (:func:`get_run`) of the current version and of the latest trained version
        (the same run unless the latest training was rejected by the gate).
    latest_month : str
        Latest as-of month in the feature mart, ``YYYY-MM``.
    code_fingerprint, config_fingerprint : str
        Fingerprints of today's ML code and configuration.
    every_months : int
        The cadence (``discipline.retrain_every_months``); 1 retrains every new month.
    forced : bool
        True when the user asked for a retrain.
    """
    if forced:
        return RetrainDecision(True, "retrain requested (--retrain)")
    if current is None or last_trained is None:
        return RetrainDecision(True, "no current version")
    if last_trained.get("code_fingerprint") != code_fingerprint:
        return RetrainDecision(True, "the ML code changed since the last training (code fingerprint)")
    if last_trained.get("config_fingerprint") != config_fingerprint:
        return RetrainDecision(True, "the ML configuration changed since the last training (config fingerprint)")
    trained_on = (last_trained.get("parameters") or {}).get("data_last_month")
    if not trained_on:
        return RetrainDecision(True, "the last training recorded no data month")
    from gridcredit.ml.features import month_index

    latest, trained = month_index([str(latest_month)[:7], str(trained_on)[:7]])
    moved = int(latest - trained)
    if moved < 0:
        return RetrainDecision(True, f"the data ends at {latest_month}, before the last training's {trained_on}")
    if moved >= every_months:
        return RetrainDecision(
            True,
            f"scheduled: {moved} new month(s) since the last training on data to {trained_on} (every {every_months})",
        )
    return RetrainDecision(
        False,
        f"reused the current version: {moved} new month(s) since the last training on data to {trained_on}; "
        f"next retrain after {every_months - moved} more (every {every_months})",
    )


def load_artifact(pg: psycopg.Connection, run_id: str):
    row = pg.execute("select artifact, artifact_sha256 from ml.model_artifacts where run_id = %s", [run_id]).fetchone()
    if row is None:
        return None
    blob = bytes(row[0])
    if hashlib.sha256(blob).hexdigest() != row[1]:
        raise RuntimeError(f"artifact of {run_id} does not match its checksum")
    return pickle.loads(blob)  # noqa: S301 - written by this package only, in the warehouse


def dump_artifact(model) -> tuple[bytes, str]:
    blob = pickle.dumps(model, protocol=5)
    return blob, hashlib.sha256(blob).hexdigest()


def start_attempt(log: psycopg.Connection, model_name: str, run_id: str | None) -> int:
    return log.execute(
        "insert into ml.model_run_attempts (model_name, run_id) values (%s, %s) returning attempt_id",
        [model_name, run_id],
    ).fetchone()[0]


def finish_attempt(
    log: psycopg.Connection, attempt_id: int, outcome: str, message: str | None, run_id: str | None = None
) -> None:
    log.execute(
        "update ml.model_run_attempts set finished_at = now(), outcome = %s, message = %s, "
        "run_id = coalesce(%s, run_id) where attempt_id = %s",
        [outcome, (message or "")[:4000] or None, run_id, attempt_id],
    )


def close_interrupted_attempts(log: psycopg.Connection) -> None:
    log.execute(
        "update ml.model_run_attempts set outcome = 'interrupted', finished_at = coalesce(finished_at, now()) "
        "where outcome = 'running'"
    )
