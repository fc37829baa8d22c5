"""ML building blocks without a database: grades, overrides, PSI, splits, gate, reasons, config."""

from __future__ import annotations

import copy
import math

import numpy as np
import pandas as pd
import pytest

from gridcredit.ml import metrics as M
from gridcredit.ml.config import ConfigError, config_fingerprint, load_config, validate_config
from gridcredit.ml.features import MONTH_INDEX, ColumnInfo, Dataset, discover_features, plain_label
from gridcredit.ml.grades import apply_overrides, grade_for_score, points_to_score, score_from_probability
from gridcredit.ml.modelling import labelled_plan
from gridcredit.ml.monitoring import bin_shares, psi, psi_bin_edges, psi_flag, psi_from_shares
from gridcredit.ml.reasons import format_value, occlusion_contributions, top_reasons
from gridcredit.ml.registry import promotion_decision, retrain_decision
from gridcredit.ml.splits import InsufficientHistory, TimeSplit, out_of_time_split
from gridcredit.ml.synthetic import make_marts


@pytest.fixture(scope="module")
def cfg() -> dict:
    return load_config()


# -- grades ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("score", "grade"),
    [
        (100, "AAA"),
        (90, "AAA"),
        (89.99, "AA"),
        (80, "AA"),
        (79.99, "A"),
        (70, "A"),
        (69.99, "B"),
        (60, "B"),
        (59.99, "C"),
        (0, "C"),
    ],
)
def test_grade_boundaries(score, grade):
    assert grade_for_score(score)[0] == grade


@pytest.mark.parametrize("bad", [-0.01, 100.01, float("nan")])
def test_grade_rejects_scores_outside_0_100(bad):
    with pytest.raises(ValueError):
        grade_for_score(bad)


def test_points_to_score_floors_and_clips():
    assert points_to_score([89.99, 90.0, -5, 140, np.nan]).tolist() == [89, 90, 0, 100, 0]


def test_points_scale_doubles_odds_every_pdo(cfg):
    section = cfg["credit_score"]
    pdo, base, odds = section["pdo"], section["base_points"], section["base_odds"]
    p_at_base = 1 / (1 + odds)
    p_double = 1 / (1 + 2 * odds)
    assert score_from_probability(p_at_base, pdo, base, odds) == pytest.approx(base)
    assert score_from_probability(p_double, pdo, base, odds) == pytest.approx(base + pdo)


def test_grade_cutoffs_must_be_contiguous(cfg):
    broken = copy.deepcopy(cfg)
    broken["credit_score"]["grades"][0]["min"] = 91
    with pytest.raises(ConfigError, match="grade"):
        validate_config(broken)


def test_override_action_must_be_known(cfg):
    broken = copy.deepcopy(cfg)
    broken["credit_score"]["overrides"][0]["action"] = "raise"
    with pytest.raises(ConfigError, match="action"):
        validate_config(broken)


def test_warning_thresholds_must_be_ordered(cfg):
    broken = copy.deepcopy(cfg)
    broken["arrears_warning"]["levels"]["thresholds"]["red"] = 0.1
    with pytest.raises(ConfigError, match="red >= orange"):
        validate_config(broken)


# -- override rules ---------------------------------------------------------------------------------
def _customer(**values) -> dict:
    base = {
        "max_days_past_due_12m": 0,
        "months_in_arrears_12m": 0,
        "consumption_vs_baseline_ratio": 1.0,
        "is_in_arrears": False,
        "legal_event_count_12m": 0,
        "is_dishonest_debtor": False,
        "tenure_months": 60,
        "consumption_kwh": 500.0,
        "missing_reading_days": 0,
        "contract_capacity_kva": 100.0,
    }
    base.update(values)
    return base


def _final(cfg, grade: str, **values) -> tuple[str, str | None]:
    frame = pd.DataFrame([_customer(**values)])
    outcome = apply_overrides([grade], frame, cfg["credit_score"]["overrides"])
    return outcome.final_grade[0], outcome.reasons[0]


def test_no_override_for_a_clean_customer(cfg):
    assert _final(cfg, "AAA") == ("AAA", None)


@pytest.mark.parametrize("values", [{"max_days_past_due_12m": 91}, {"months_in_arrears_12m": 6}])
def test_severe_delinquency_forces_c(cfg, values):
    grade, reason = _final(cfg, "AA", **values)
    assert grade == "C"
    assert "Severe delinquency" in reason


def test_90_days_past_due_is_not_severe(cfg):
    assert _final(cfg, "AA", max_days_past_due_12m=90)[0] == "AA"


def test_business_decline_needs_collapse_and_arrears(cfg):
    assert _final(cfg, "A", consumption_vs_baseline_ratio=0.2)[0] == "A"
    assert _final(cfg, "A", is_in_arrears=True)[0] == "A"
    grade, reason = _final(cfg, "A", consumption_vs_baseline_ratio=0.2, is_in_arrears=True)
    assert grade == "C" and "decline in business" in reason


@pytest.mark.parametrize("values", [{"legal_event_count_12m": 1}, {"is_dishonest_debtor": True}])
def test_legal_events_force_c(cfg, values):
    grade, reason = _final(cfg, "AAA", **values)
    assert grade == "C" and "Legal events" in reason


def test_new_customer_capped_at_a(cfg):
    grade, reason = _final(cfg, "AAA", tenure_months=5)
    assert grade == "A" and "New customer" in reason
    assert _final(cfg, "B", tenure_months=5) == ("B", None)  # a cap never raises a grade


@pytest.mark.parametrize(
    "values", [{"consumption_kwh": np.nan}, {"missing_reading_days": 20}, {"contract_capacity_kva": np.nan}]
)
def test_incomplete_key_data_capped_at_a(cfg, values):
    grade, reason = _final(cfg, "AA", **values)
    assert grade == "A" and "Incomplete key data" in reason


def test_worst_override_wins_and_all_reasons_kept(cfg):
    grade, reason = _final(cfg, "AAA", tenure_months=3, max_days_past_due_12m=120)
    assert grade == "C"
    assert "Severe delinquency" in reason and "New customer" in reason


def test_override_with_missing_column_is_skipped(cfg):
    frame = pd.DataFrame([_customer()]).drop(columns=["is_dishonest_debtor"])
    outcome = apply_overrides(["AA"], frame, cfg["credit_score"]["overrides"])
    assert "legal_events" in outcome.skipped
    assert outcome.final_grade[0] == "AA"


# -- PSI --------------------------------------------------------------------------------------------
def test_psi_hand_example():
    expected = [0.25, 0.25, 0.25, 0.25]
    actual = [0.10, 0.20, 0.30, 0.40]
    by_hand = sum((a - e) * math.log(a / e) for a, e in zip(actual, expected, strict=True))
    assert by_hand == pytest.approx(0.228217, abs=1e-6)
    assert psi_from_shares(expected, actual) == pytest.approx(by_hand)


def test_psi_on_quartile_bins_of_the_reference():
    reference = np.arange(1, 101, dtype=float)  # quartile edges 25.75, 50.5, 75.25
    edges = psi_bin_edges(reference, 4)
    assert edges.tolist() == pytest.approx([25.75, 50.5, 75.25])
    current = np.concatenate([np.full(10, 10.0), np.full(20, 40.0), np.full(30, 60.0), np.full(40, 90.0)])
    assert bin_shares(current, edges)[:4].tolist() == pytest.approx([0.1, 0.2, 0.3, 0.4])
    assert psi(reference, current, 4) == pytest.approx(0.228217, abs=1e-6)
    assert psi(reference, reference, 4) == pytest.approx(0.0)


def test_psi_flags_at_thresholds():
    assert psi_flag(0.0999) == "stable"
    assert psi_flag(0.1) == "investigate"
    assert psi_flag(0.2499) == "investigate"
    assert psi_flag(0.25) == "act"
    assert psi_flag(None) is None


def test_psi_counts_missing_values_as_their_own_bin():
    reference = np.arange(100, dtype=float)
    current = np.where(np.arange(100) < 50, np.nan, np.arange(100.0))
    assert psi(reference, current, 10) > 0.25


# -- out-of-time splits -----------------------------------------------------------------------------
def test_split_is_ordered_and_disjoint():
    split = out_of_time_split(range(100, 130), train_months=24, validation_months=3, test_months=3)
    assert max(split.train) < min(split.validation) <= max(split.validation) < min(split.test)
    assert split.test == (127, 128, 129)
    assert split.validation == (124, 125, 126)
    assert len(split.train) == 24 and split.train[-1] == 123


def test_split_shrinks_validation_then_test_on_short_history():
    split = out_of_time_split(range(5), train_months=24, validation_months=3, test_months=3, min_train_months=2)
    assert (len(split.train), len(split.validation), len(split.test)) == (2, 1, 2)


def test_split_refuses_too_little_history():
    with pytest.raises(InsufficientHistory):
        out_of_time_split([1, 2], min_train_months=2)


def test_split_parts_out_of_order_are_refused():
    with pytest.raises(ValueError):
        TimeSplit(train=(5, 6), validation=(), test=(6, 7))


def test_training_plan_never_mixes_months(cfg):
    features, labels = make_marts(customers=120, months=26, seed=3)
    frame = features.merge(labels, on=["customer_id", "as_of_month"])
    frame["as_of_month"] = pd.to_datetime(frame["as_of_month"])
    frame[MONTH_INDEX] = frame["as_of_month"].dt.year * 12 + frame["as_of_month"].dt.month - 1
    feats = [c for c in features.columns if c not in ("customer_id", "as_of_month", "industry_code", "region_code")]
    ds = Dataset(
        frame=frame,
        features=feats,
        labels={"arrears_next_month": "is_in_arrears_next_month", "bad_within_12_months": "is_bad_within_12_months"},
        segments={},
    )
    plan = labelled_plan(ds, cfg, "arrears_warning", "arrears_next_month", feats)
    months = frame[MONTH_INDEX].to_numpy()
    train, val, test = (set(months[plan.train_rows]), set(months[plan.validation_rows]), set(months[plan.test_rows]))
    assert max(train) < min(val) and max(val) < min(test)
    assert max(test) == frame[MONTH_INDEX].max() - 1  # the last month has no next-month label
    bad = labelled_plan(ds, cfg, "credit_score", "bad_within_12_months", feats, use_validation=False)
    assert max(months[bad.test_rows]) <= frame[MONTH_INDEX].max() - 12  # 12-month outcome must be mature


# -- promotion gate ---------------------------------------------------------------------------------
def test_gate_keeps_current_when_new_is_worse_beyond_tolerance():
    decision = promotion_decision(0.70, 0.75, "auc", True, 0.01)
    assert not decision.promote and "kept the current version" in decision.reason


def test_gate_promotes_within_tolerance():
    assert promotion_decision(0.745, 0.75, "auc", True, 0.01).promote


def test_gate_promotes_the_first_version():
    assert promotion_decision(0.6, None, "auc", True, 0.01, has_current=False).promote


def test_gate_promotes_when_neither_version_can_be_measured():
    """No labelled outcome in the test months (the theft model before any inspection): nothing
    says the new version is worse, so the newer one is promoted, and the reason says why."""
    decision = promotion_decision(None, None, "precision_at_capacity", True, 0.02)
    assert decision.promote
    assert "neither the new nor the current version has a precision_at_capacity" in decision.reason


def test_gate_keeps_current_when_only_the_current_version_can_be_measured():
    decision = promotion_decision(None, 0.1, "precision_at_capacity", True, 0.02)
    assert not decision.promote and "the new version has no precision_at_capacity" in decision.reason


def test_gate_for_errors_is_relative():
    assert promotion_decision(0.81, 0.80, "mae_ratio", False, 0.02).promote
    assert not promotion_decision(0.83, 0.80, "mae_ratio", False, 0.02).promote


# -- reasons, features, metrics ---------------------------------------------------------------------
# -- retrain cadence (ADR 0035) ---------------------------------------------------------------------
def _trained(month: str | None, code: str = "c", config: str = "k") -> dict:
    return {
        "run_id": "arrears_warning-x",
        "code_fingerprint": code,
        "config_fingerprint": config,
        "parameters": {"data_last_month": month} if month else {},
    }


def _due(latest: str, last: dict | None, current: dict | None = None, every: int = 3, **kw):
    current = current if current is not None else last
    return retrain_decision(
        current=current,
        last_trained=last,
        latest_month=latest,
        code_fingerprint=kw.pop("code", "c"),
        config_fingerprint=kw.pop("config", "k"),
        every_months=every,
        **kw,
    )


def test_retrain_follows_the_cadence():
    last = _trained("2024-12")
    assert not _due("2024-12", last).retrain  # same data again
    assert not _due("2025-01", last).retrain
    reused = _due("2025-02", last)
    assert not reused.retrain and "reused" in reused.reason and "next retrain after 1 more" in reused.reason
    assert _due("2025-03", last).retrain  # three new months: scheduled
    assert "scheduled" in _due("2025-03", last).reason
    assert _due("2025-01", last, every=1).retrain  # monthly cadence: every new month trains
    assert not _due("2024-12", last, every=1).retrain


def test_retrain_is_forced_by_fingerprints_request_and_missing_history():
    last = _trained("2024-12")
    assert "code" in _due("2025-01", last, code="other").reason and _due("2025-01", last, code="other").retrain
    assert _due("2025-01", last, config="other").retrain
    assert _due("2025-01", last, forced=True).retrain
    assert _due("2025-01", None).retrain  # no version yet
    assert _due("2025-01", _trained(None)).retrain  # trained before the cadence was recorded
    assert _due("2024-10", last).retrain  # the data ends before the last training's data


def test_cadence_counts_from_the_last_training_even_when_it_was_rejected():
    current, rejected = _trained("2024-09"), _trained("2024-12")
    assert not _due("2025-01", rejected, current=current).retrain


def test_retrain_cadence_is_validated_and_not_part_of_the_model_fingerprint(cfg):
    other = copy.deepcopy(cfg)
    other["discipline"]["retrain_every_months"] = 6
    assert config_fingerprint(other) == config_fingerprint(cfg)  # when to train, not how
    other["discipline"]["retrain_every_months"] = 0
    with pytest.raises(ConfigError, match="retrain_every_months"):
        validate_config(other)
    other["discipline"]["retrain_every_months"] = 1.5
    with pytest.raises(ConfigError, match="retrain_every_months"):
        validate_config(other)


def test_top_reasons_strongest_first_in_plain_words():
    contributions = np.array([[0.0, 12.4, 3.0], [0.2, 0.1, 0.0]])
    values = np.array([[1.0, 95.0, 0.456], [1.0, 2.0, 3.0]])
    out = top_reasons(
        contributions,
        values,
        ["a", "days_past_due", "c"],
        {"days_past_due": "Days past due"},
        k=3,
        unit="points",
        min_contribution=0.5,
    )
    assert out.loc[0, "reason_1"] == "Days past due: 95 (-12 points)"
    assert out.loc[0, "reason_2"] == "c: 0.46 (-3 points)"
    assert out.loc[0, "reason_3"] is None
    assert out.loc[0, "reason_codes"] == "days_past_due,c"
    assert out.loc[1].isna().all()


def test_occlusion_skips_only_rows_already_at_the_reference():
    """Rows at the reference value (NaN included) get 0 without a prediction; the others get
    exactly predict(row) - predict(row with the reference), as a full re-prediction would."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(40, 3))
    X[::3, 0] = 0.5
    X[::4, 1] = np.nan
    reference = np.array([0.5, np.nan, 0.0])
    weights = np.array([1.0, -2.0, 0.7])
    predicted_rows = []

    def predict(block):
        predicted_rows.append(len(block))
        return np.nansum(np.tanh(block * weights), axis=1) + np.isnan(block[:, 1]) * 0.3

    out = occlusion_contributions(predict, X, reference, [0, 1], batch_rows=16)
    rows_predicted = sum(predicted_rows)
    for j in (0, 1):
        changed = X.copy()
        changed[:, j] = reference[j]
        np.testing.assert_allclose(out[:, j], predict(X) - predict(changed), rtol=0, atol=1e-12)
    assert np.isnan(out[:, 2]).all()
    assert (out[::3, 0] == 0).all() and (out[::4, 1] == 0).all()
    # one base prediction per batch plus only the rows that differ from the reference
    differs = (X[:, 0] != 0.5).sum() + (~np.isnan(X[:, 1])).sum()
    assert rows_predicted == len(X) + differs


def test_format_value():
    assert format_value(np.nan) == "missing"
    assert format_value(1234.0) == "1,234"
    assert format_value(0.5) == "0.50"


def test_feature_discovery_keeps_numeric_non_key_non_label_columns(cfg):
    columns = [
        ColumnInfo("customer_id", "text", None),
        ColumnInfo("as_of_month", "date", None),
        ColumnInfo("days_past_due", "integer", None),
        ColumnInfo("is_in_arrears", "boolean", None),
        ColumnInfo("region_code", "text", None),
        ColumnInfo("source_load_id", "bigint", None),
        ColumnInfo("is_in_arrears_next_month", "boolean", None),
        ColumnInfo("value_tier", "text", None),
    ]
    assert discover_features(columns, cfg) == ["days_past_due", "is_in_arrears"]


def test_plain_label_uses_the_first_sentence_of_the_description():
    info = ColumnInfo("days_past_due", "integer", "Days past due of the oldest unpaid bill. More text.")
    assert plain_label(info) == "Days past due of the oldest unpaid bill"
    assert plain_label(ColumnInfo("zero_reading_days", "integer", None)) == "Zero reading days"
    assert plain_label(info, {"days_past_due": "DPD"}) == "DPD"
    described = "**Payment behaviour.** Worst delay of the last 3 months: max."
    indicator = ColumnInfo("max_days_past_due_3m", "integer", described)
    assert plain_label(indicator) == "Worst delay of the last 3 months"


def test_ks_and_precision_at_k():
    y = np.array([0, 0, 1, 1])
    s = np.array([0.1, 0.2, 0.8, 0.9])
    assert M.auc(y, s) == pytest.approx(1.0)
    assert M.ks(y, s) == pytest.approx(1.0)
    assert M.precision_at_k([1, 0, 1, 0], [0.9, 0.8, 0.1, 0.0], 2) == pytest.approx(0.5)
    assert M.auc([1, 1], [0.1, 0.2]) is None


def test_calibration_by_decile_covers_every_row():
    rng = np.random.default_rng(0)
    p = rng.random(1000)
    y = (rng.random(1000) < p).astype(int)
    table = M.calibration_by_decile(y, p)
    assert table["n"].sum() == 1000 and table["decile"].tolist() == list(range(1, 11))
    assert table["observed_rate"].iloc[-1] > table["observed_rate"].iloc[0]


def test_fingerprint_of_rows_equals_the_fingerprint_of_their_copy():
    """Plans fingerprint their rows column by column (no copy of the training rows): the digest must
    be the one of the copied frame, or every stored run key would change."""
    from gridcredit.ml.features import fingerprint_frame, fingerprint_rows

    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "customer_id": pd.Series([f"C{i:04d}" for i in range(50)], dtype="str"),
            "as_of_month": pd.to_datetime(["2024-01-01"] * 50),
            "x": rng.normal(size=50),
            "y": np.where(rng.random(50) < 0.3, np.nan, 1.0),
            "segment": pd.Series(["a", "b"] * 25, dtype="string"),
        }
    )
    rows = np.array([7, 3, 3, 49, 0, 12])
    columns = ["customer_id", "as_of_month", "y", "x", "segment"]
    expected = fingerprint_frame(frame.iloc[rows][columns].reset_index(drop=True))
    assert fingerprint_rows(frame, rows, columns) == expected
    assert fingerprint_rows(frame, rows[:-1], columns) != expected
    assert fingerprint_rows(frame, rows, columns[:-1]) != expected
    assert fingerprint_rows(frame, rows[:0], columns) == fingerprint_frame(frame.iloc[:0][columns])


def test_lookup_join_fills_like_a_left_merge():
    from gridcredit.ml.features import _take_or_missing

    left = pd.DataFrame({"k": ["a", "b", "c", "d"]})
    right = pd.DataFrame({"k": ["d", "a"], "v": [4.0, 1.0], "s": pd.Series(["x", "y"], dtype="string")})
    merged = left.merge(right, on="k", how="left")
    at = pd.Index(right["k"]).get_indexer(left["k"])
    for column in ("v", "s"):
        pd.testing.assert_series_equal(_take_or_missing(right[column], at), merged[column], check_names=False)


def test_feature_psi_pair_by_pair_equals_all_months_at_once():
    from gridcredit.ml.monitoring import psi_month_over_month
    from gridcredit.ml.scoring import feature_psi

    features, labels = make_marts(customers=60, months=8, seed=5)
    frame = features.copy()
    frame["as_of_month"] = pd.to_datetime(frame["as_of_month"])
    frame[MONTH_INDEX] = frame["as_of_month"].dt.year * 12 + frame["as_of_month"].dt.month - 1
    frame = frame.sort_values([MONTH_INDEX, "customer_id"], ignore_index=True)
    names = [c for c in frame.select_dtypes("number").columns if c != MONTH_INDEX][:5]
    frame[names] = frame[names].astype(float)
    ds = Dataset(frame=frame, features=names, labels={}, segments={})
    recent = ds.months[-5:]
    whole = psi_month_over_month(frame[frame[MONTH_INDEX].isin(recent)], "as_of_month", names, 10, 0.1, 0.25)
    pd.testing.assert_frame_equal(feature_psi(ds, recent, 10, 0.1, 0.25), whole, check_exact=True)
    assert len(whole) == 4 * len(names)
    assert feature_psi(ds, recent[:1], 10, 0.1, 0.25).empty


def test_score_batches_hold_whole_months_up_to_the_row_limit(cfg):
    from gridcredit.ml.scoring import score_batches

    months = np.repeat(np.arange(100, 106), [3, 3, 3, 5, 1, 3])
    ds = Dataset(frame=pd.DataFrame({MONTH_INDEX: months}), features=[], labels={}, segments={})
    assert score_batches(ds, [105, 100, 101, 102, 103, 104], 6) == [[100, 101], [102], [103, 104], [105]]
    assert score_batches(ds, [101, 103], 1) == [[101], [103]]  # a month larger than the limit is one batch
    assert score_batches(ds, range(100, 106), 10**6) == [list(range(100, 106))]
    other = copy.deepcopy(cfg)
    other["discipline"]["score_batch_rows"] = 7
    validate_config(other)
    assert config_fingerprint(other) == config_fingerprint(cfg)  # memory, not the model
    other["discipline"]["score_batch_rows"] = 0.5
    with pytest.raises(ConfigError):
        validate_config(other)


def test_kwh_lookup_reads_like_the_long_frames_keyed_reindex():
    """The forecast's kWh lookup (a dense array built once, ADR 0101) returns what indexing the
    long frame by (customer, month) returns: the value, NaN for a missing row or a NaN reading,
    NaN for an unknown customer or a month outside the frame."""
    from gridcredit.ml.consumption import KwhLookup

    long = pd.DataFrame(
        {
            "customer_id": ["C2", "C1", "C1", "C3", "C2"],
            "m": [24001, 24000, 24002, 24001, 24003],
            "kwh": [5.5, 1.0, np.nan, 0.0, 7.25],
        }
    )
    customers = ["C1", "C1", "C1", "C2", "C2", "C3", "C9", "C1", "C2"]
    months = [24000, 24001, 24002, 24001, 24003, 24001, 24001, 23988, 24015]
    keyed = long.set_index(["customer_id", "m"])["kwh"]
    expected = keyed.reindex(pd.MultiIndex.from_arrays([customers, months])).to_numpy(dtype=float)
    got = KwhLookup(long).get(pd.Series(customers), pd.Series(months))
    np.testing.assert_array_equal(got, expected)
    assert np.isnan(got).sum() == 5
