"""Tests for gridcredit.ml.scorecard: estimator contract, points scaling, SQL parity, CSV errors."""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gridcredit.ml.scorecard import (
    TABLE_COLUMNS,
    Scorecard,
    ScorecardInputError,
    fit_scorecard_from_csv,
    ks_statistic,
)

TAIWAN = (Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
          / "taiwan_credit_default" / "taiwan_credit_default.csv")
TAIWAN_TARGET = "default.payment.next.month"


def make_credit_frame(n: int = 2000, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Seeded synthetic applicants: numeric, categorical (with an apostrophe), missing, special."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "customer_id": np.arange(n),
        "arrears_amount": rng.gamma(2.0, 50.0, n),
        "tariff": rng.choice(["prepaid", "standard", "o'neill", None], n, p=[0.3, 0.4, 0.2, 0.1]),
        "months_on_book": rng.integers(0, 120, n).astype(float),
    })
    frame.loc[rng.random(n) < 0.08, "arrears_amount"] = np.nan
    frame.loc[rng.random(n) < 0.05, "months_on_book"] = -999.0
    logit = (-1.5 + 0.012 * frame["arrears_amount"].fillna(150)
             + 0.9 * (frame["tariff"] == "prepaid") - 0.015 * frame["months_on_book"].clip(0)
             + 1.0 * (frame["months_on_book"] == -999))
    y = (rng.random(n) < 1 / (1 + np.exp(-logit.to_numpy()))).astype(int)
    return frame, y


@pytest.fixture(scope="module")
def credit():
    return make_credit_frame()


@pytest.fixture(scope="module")
def fitted(credit):
    frame, y = credit
    X = frame.drop(columns="customer_id")
    return Scorecard(special_codes=[-999], min_iv=0.0).fit(X, y)


# -- estimator contract ------------------------------------------------------------------------
def test_init_only_stores_parameters():
    card = Scorecard(pdo=40, base_score=500, base_odds=20)
    assert card.get_params()["pdo"] == 40
    assert not [k for k in vars(card) if k.endswith("_")]


def test_fit_returns_self_with_fitted_attributes(credit):
    frame, y = credit
    card = Scorecard(min_iv=0.0)
    assert card.fit(frame.drop(columns="customer_id"), y) is card
    assert card.categorical_features_ == ["tariff"]
    assert set(card.selected_features_) <= {"arrears_amount", "tariff", "months_on_book"}
    assert list(card.table_.columns) == list(TABLE_COLUMNS)


def test_points_scaling_matches_formula(fitted, credit):
    frame, _ = credit
    X = frame.drop(columns="customer_id")
    factor = 20 / math.log(2)
    offset = 600 - factor * math.log(50)
    assert fitted.factor_ == pytest.approx(factor)
    assert fitted.offset_ == pytest.approx(offset)
    p_bad = fitted.predict_proba(X)[:, 1]
    expected = offset + factor * np.log((1 - p_bad) / p_bad)
    np.testing.assert_allclose(fitted.predict_score(X), expected, rtol=0, atol=1e-8)
    # Per-bin points follow -(coef * woe + intercept / n) * factor + offset / n.
    n = len(fitted.selected_features_)
    b0 = fitted.logistic_regression_.intercept_[0]
    table = fitted.table_
    np.testing.assert_allclose(
        table["points"], -(table["coefficient"] * table["woe"] + b0 / n) * factor + offset / n)


def test_higher_score_means_lower_risk(fitted, credit):
    frame, y = credit
    scores = fitted.predict_score(frame.drop(columns="customer_id"))
    assert scores[y == 0].mean() > scores[y == 1].mean()
    assert (fitted.logistic_regression_.coef_ <= 0).all()


def test_missing_and_special_values_get_their_own_bins(fitted):
    table = fitted.table_.set_index(["variable", "bin_kind"])
    assert table.loc[("arrears_amount", "missing"), "count"].item() > 0
    assert table.loc[("months_on_book", "special"), "count"].item() > 0
    # Special -999 behaves riskier than a long-standing customer in this simulated data.
    months = fitted.table_[fitted.table_["variable"] == "months_on_book"]
    special = months[months["bin_kind"] == "special"]["points"].item()
    assert special < months[months["bin_kind"] == "bin"]["points"].max()


@pytest.mark.parametrize(("params", "error"), [
    ({"pdo": 0}, ValueError),
    ({"pdo": "20"}, TypeError),
    ({"base_odds": -1}, ValueError),
    ({"base_score": None}, TypeError),
    ({"monotonic_trend": "up"}, ValueError),
    ({"max_n_bins": 1}, ValueError),
    ({"max_n_bins": 2.5}, TypeError),
    ({"min_bin_size": 0.9}, ValueError),
    ({"min_iv": -0.1}, ValueError),
    ({"special_codes": "-999"}, TypeError),
    ({"enforce_sign": "yes"}, TypeError),
])
def test_bad_parameters_raise(credit, params, error):
    frame, y = credit
    with pytest.raises(error):
        Scorecard(**params).fit(frame.drop(columns="customer_id"), y)


def test_monotonic_trend_error_names_allowed_values(credit):
    frame, y = credit
    with pytest.raises(ValueError, match="auto_asc_desc"):
        Scorecard(monotonic_trend="up").fit(frame, y)


def test_bad_inputs_raise(credit):
    frame, y = credit
    with pytest.raises(TypeError, match="DataFrame"):
        Scorecard().fit(frame.to_numpy(), y)
    with pytest.raises(ValueError, match="0 .good. and 1 .bad."):
        Scorecard().fit(frame, y + 1)
    with pytest.raises(ValueError, match="single class"):
        Scorecard().fit(frame, np.zeros(len(frame), dtype=int))
    with pytest.raises(ValueError, match="one per row"):
        Scorecard().fit(frame, y[:-1])


def test_ks_statistic_hand_example():
    # bads at scores 0.9, 0.8; goods at 0.7, 0.85, 0.1 -> max(tpr - fpr) = 1 - 1/3.
    assert ks_statistic([1, 1, 0, 0, 0], [0.9, 0.8, 0.7, 0.85, 0.1]) == pytest.approx(2 / 3)


# -- SQL parity --------------------------------------------------------------------------------
def _scoring_frame(credit):
    frame, _ = credit
    test = frame.copy()
    test.loc[:4, "tariff"] = "unseen tariff"  # unknown category
    test.loc[5:9, "arrears_amount"] = np.nan
    return test


def _compare(sql_result: pd.DataFrame, card, frame: pd.DataFrame):
    result = sql_result.sort_values("customer_id").reset_index(drop=True)
    expected = card.predict_score(frame.drop(columns="customer_id"))
    assert len(result) == len(frame)
    np.testing.assert_allclose(result["score"].astype(float), expected, rtol=0, atol=1e-6)
    point_columns = [c for c in result.columns if c.startswith("points__")]
    np.testing.assert_allclose(result[point_columns].astype(float).sum(axis=1), expected,
                               atol=1e-6)


def test_sql_matches_python_in_sqlite(fitted, credit):
    frame = _scoring_frame(credit)
    sql = fitted.to_sql(keep_columns=["customer_id"])
    assert "{{ table }}" in sql
    with sqlite3.connect(":memory:") as con:
        frame.to_sql("applicants", con, index=False)
        result = pd.read_sql(sql.replace("{{ table }}", "applicants"), con)
    _compare(result, fitted, frame)


def test_sql_matches_python_in_postgres(fitted, credit, fresh_database):
    """Real PostgreSQL: the lead's session warehouse (conftest), a database of its own."""
    import psycopg

    frame = _scoring_frame(credit)
    sql = fitted.to_sql(keep_columns=["customer_id"])
    with psycopg.connect(fresh_database.url, autocommit=True) as con:
        con.execute('create temporary table applicants (customer_id integer, '
                    'arrears_amount double precision, tariff text, '
                    'months_on_book double precision)')
        rows = [(int(r.customer_id), None if pd.isna(r.arrears_amount) else r.arrears_amount,
                 None if pd.isna(r.tariff) else r.tariff,
                 None if pd.isna(r.months_on_book) else r.months_on_book)
                for r in frame.itertuples()]
        with con.cursor() as cur:
            cur.executemany("insert into applicants values (%s, %s, %s, %s)", rows)
            cur.execute(sql.replace("{{ table }}", "applicants"))
            columns = [d.name for d in cur.description]
            result = pd.DataFrame(cur.fetchall(), columns=columns)
    _compare(result, fitted, frame)


# -- CSV entry point ---------------------------------------------------------------------------
@pytest.fixture()
def credit_csv(tmp_path, credit):
    frame, y = credit
    path = tmp_path / "applicants.csv"
    frame.assign(status=np.where(y == 1, "default", "paid")).to_csv(path, index=False)
    return path


def test_fit_from_csv_writes_artefacts(credit_csv, tmp_path):
    out = tmp_path / "out"
    result = fit_scorecard_from_csv(credit_csv, "status", id_column="customer_id",
                                    bad_value="default", out_dir=out)
    for name in ("scorecard.csv", "scorecard.json", "report.json", "score.sql"):
        assert (out / name).is_file()
    report = json.loads((out / "report.json").read_text())
    assert report["n_train"] + report["n_test"] == 2000
    assert report["n_test"] == 600
    assert report["bad_value"] == "default"
    assert report["gini"] == pytest.approx(2 * report["auc"] - 1)
    assert report["auc"] > 0.65
    assert "customer_id" not in report["selected_variables"]
    table = pd.read_csv(out / "scorecard.csv")
    assert {"variable", "bin", "woe", "event_rate", "count", "points"} <= set(table.columns)
    assert json.loads((out / "scorecard.json").read_text())[0]["variable"] == table["variable"][0]
    assert 'source_rows."customer_id"' in (out / "score.sql").read_text()
    assert result["files"]["score.sql"] == str(out / "score.sql")


def test_cli_fit(credit_csv, tmp_path):
    from typer.testing import CliRunner

    from gridcredit.ml.scorecard.cli import app

    out = tmp_path / "cli_out"
    runner = CliRunner()
    ok = runner.invoke(app, ["fit", "--csv", str(credit_csv), "--target", "status", "--id",
                             "customer_id", "--bad-value", "default", "--test-size", "0.25",
                             "--seed", "3", "--out", str(out)])
    assert ok.exit_code == 0, ok.output
    assert json.loads((out / "report.json").read_text())["n_test"] == 500
    bad = runner.invoke(app, ["fit", "--csv", str(credit_csv), "--target", "nope",
                              "--out", str(out)])
    assert bad.exit_code == 2
    assert "nope" in bad.output


def test_csv_missing_target_column(credit_csv, tmp_path):
    with pytest.raises(ScorecardInputError, match=r"applicants\.csv.*'nope' not found"):
        fit_scorecard_from_csv(credit_csv, "nope", out_dir=tmp_path)


def test_csv_target_with_one_class(tmp_path, credit):
    frame, _ = credit
    path = tmp_path / "one_class.csv"
    frame.assign(status=0).to_csv(path, index=False)
    with pytest.raises(ScorecardInputError, match=r"one_class\.csv.*single class"):
        fit_scorecard_from_csv(path, "status", out_dir=tmp_path)


def test_csv_bad_value_not_present(credit_csv, tmp_path):
    with pytest.raises(ScorecardInputError, match=r"bad_value 'Y' does not occur"):
        fit_scorecard_from_csv(credit_csv, "status", bad_value="Y", out_dir=tmp_path)


def test_csv_text_target_needs_bad_value(credit_csv, tmp_path):
    with pytest.raises(ScorecardInputError, match="pass bad_value"):
        fit_scorecard_from_csv(credit_csv, "status", out_dir=tmp_path)


def test_csv_binary_file(tmp_path):
    path = tmp_path / "garbage.csv"
    path.write_bytes(bytes(range(256)) * 40)
    with pytest.raises(ScorecardInputError, match=r"garbage\.csv: binary file"):
        fit_scorecard_from_csv(path, "status", out_dir=tmp_path)


def test_csv_single_column(tmp_path):
    path = tmp_path / "single.csv"
    path.write_text("status\n" + "\n".join(["0", "1"] * 100) + "\n")
    with pytest.raises(ScorecardInputError, match=r"single\.csv: found 1 column"):
        fit_scorecard_from_csv(path, "status", out_dir=tmp_path)


def test_csv_too_few_rows(tmp_path, credit):
    frame, y = credit
    path = tmp_path / "tiny.csv"
    frame.head(20).assign(status=y[:20]).to_csv(path, index=False)
    with pytest.raises(ScorecardInputError, match=r"tiny\.csv: too few rows"):
        fit_scorecard_from_csv(path, "status", out_dir=tmp_path)


def test_csv_missing_file(tmp_path):
    with pytest.raises(ScorecardInputError, match="file not found"):
        fit_scorecard_from_csv(tmp_path / "absent.csv", "status", out_dir=tmp_path)


def test_csv_semicolon_delimiter_is_detected(tmp_path, credit):
    frame, y = credit
    path = tmp_path / "semicolon.csv"
    frame.assign(status=y).to_csv(path, index=False, sep=";")
    result = fit_scorecard_from_csv(path, "status", id_column="customer_id", out_dir=tmp_path)
    assert result["bad_value"] == 1


# -- real data ---------------------------------------------------------------------------------
@pytest.mark.skipif(not TAIWAN.exists(), reason="real Taiwan credit data not available")
def test_taiwan_credit_default_holdout(tmp_path):
    """Real data, seed 0: measured AUC 0.760, KS 0.403, baseline LR AUC 0.715."""
    result = fit_scorecard_from_csv(TAIWAN, TAIWAN_TARGET, id_column="ID", seed=0,
                                    out_dir=tmp_path)
    print(f"\nTaiwan holdout: AUC {result['auc']:.4f} KS {result['ks']:.4f} "
          f"Gini {result['gini']:.4f} baseline LR AUC {result['baseline_lr_auc']:.4f} "
          f"vars {result['selected_variables']}")
    assert result["n_train"] == 21000 and result["n_test"] == 9000
    assert result["auc"] > 0.74
    assert result["auc"] > result["baseline_lr_auc"] + 0.02
    assert 0.6 < result["baseline_lr_auc"] < 0.75
    assert result["ks"] > 0.35
    assert "ID" not in result["selected_variables"]
    # The SQL reproduces the Python scores on real data too (SQLite, 9,000 holdout rows).
    frame = pd.read_csv(TAIWAN).iloc[result["test_index"]]
    sql = (tmp_path / "score.sql").read_text().replace("{{ table }}", "holdout")
    with sqlite3.connect(":memory:") as con:
        frame.to_sql("holdout", con, index=False)
        scored = pd.read_sql(sql, con).set_index("ID").loc[frame["ID"]]
    expected = result["scorecard"].predict_score(frame.drop(columns=["ID", TAIWAN_TARGET]))
    np.testing.assert_allclose(scored["score"], expected, atol=1e-6)


def test_refit_on_the_same_data_pickles_to_the_same_bytes(credit):
    """A rerun (or a run resumed after a crash) must store the same model artifact: no wall-clock
    timings inside the fitted object (optbinning records how long each fit took)."""
    import pickle

    frame, y = credit
    X = frame.drop(columns="customer_id")
    blobs = [pickle.dumps(Scorecard(special_codes=[-999], min_iv=0.0).fit(X, y), protocol=5) for _ in range(2)]
    assert blobs[0] == blobs[1]


def test_cli_start_up_does_not_import_the_ml_stack():
    """Every `gridcredit` command mounts `scorecard.cli`; the package must not pull optbinning,
    scikit-learn or scipy in until a scorecard is used (start-up took over 60 s at load ~20)."""
    import subprocess
    import sys

    code = ("import sys, gridcredit.cli; "
            "heavy = sorted(m for m in ('optbinning', 'sklearn', 'scipy') if m in sys.modules); "
            "print(','.join(heavy))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""
    from gridcredit.ml import scorecard

    assert scorecard.Scorecard.__module__ == "gridcredit.ml.scorecard._estimator"
    with pytest.raises(AttributeError):
        scorecard.not_a_name  # noqa: B018
