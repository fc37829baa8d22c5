"""Risk decisions: policy rules, overrides and their audit trail, group alerts, worklists, what-if, reports.

The policy rules themselves (new customer, approval level, limit sizing, override expiry, lists, group
alerts) are dbt unit tests in dbt_project/models/*/decisions/_decisions__models.yml; the module build
below runs them and `test_dbt_unit_tests_of_every_policy_rule_pass` checks they ran and passed.

One module-scoped build: a clone of the session's `built_warehouse`, synthetic ML outputs (the real
models are tested in test_ml_*), two analysts' overrides, then `dbt build` of the ML-dependent models.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import unicodedata
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from conftest import clone_database, drop_database
from typer.testing import CliRunner

from gridcredit import settings, warehouse
from gridcredit.decisions import store
from gridcredit.decisions.store import OverrideError, OverrideTerms, add_override, expire_override

DBT = str(Path(sys.executable).with_name("dbt"))
POLICY_SEED = settings.DBT_PROJECT_DIR / "seeds" / "policy" / "credit_policy_terms.csv"
SYNTHETIC_MONTHS = 4


def _month_end(day: dt.date) -> dt.date:
    return (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)


def _dbt(conn: warehouse.Connection, target: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, **conn.dbt_env(), DBT_PROFILES_DIR=str(settings.DBT_PROJECT_DIR))
    env["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    return subprocess.run(
        [DBT, *args, "--target-path", str(target), "--log-path", str(target / "logs")],
        cwd=settings.DBT_PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )


@pytest.fixture(scope="module")
def decisions_build(built_warehouse, tmp_path_factory):
    """A clone of the built warehouse with synthetic ML outputs, overrides, and the decisions built."""
    from gridcredit.decisions.testing import write_synthetic_ml_outputs

    conn = clone_database(built_warehouse)
    target = tmp_path_factory.mktemp("dbt-decisions-target")
    try:
        with warehouse.connect(conn, autocommit=True) as pg:
            write_synthetic_ml_outputs(pg, months=SYNTHETIC_MONTHS)
            months = [
                row[0] for row in pg.execute("select distinct as_of_month from ml.credit_scores order by 1").fetchall()
            ]
            previous, latest = months[-2], months[-1]
            customer, other = [
                row[0]
                for row in pg.execute(
                    """
                select customer_id from ml.credit_scores where as_of_month = %s and final_grade = 'AA'
                order by customer_id limit 2
                """,
                    [latest],
                ).fetchall()
            ]
            # in force for the previous month's decision only: expires at that month's end
            expiring = add_override(
                pg,
                customer,
                OverrideTerms(final_grade="B", credit_period_days=100),
                "testing expiry",
                expires_on=_month_end(previous),
                effective_from=previous,
                created_by="analyst-a",
            )
            # ended before it ever applied to the latest month
            revoked = add_override(
                pg,
                other,
                OverrideTerms(credit_limit_amount=Decimal("12345")),
                "testing revocation",
                months=6,
                effective_from=previous,
                created_by="analyst-b",
            )
            expire_override(pg, revoked, "revoked", effective_from=latest, created_by="analyst-c")
        # --full-refresh: the synthetic outputs replace every scored month, and the models incremental
        # by scored month keep months their inputs no longer have (docs/decisions/0098, 0104).
        result = _dbt(conn, target, "build", "--select", "tag:ml_scores", "tag:decisions", "--full-refresh")
        if result.returncode != 0:
            pytest.fail(f"dbt build of the decisions failed:\n{result.stdout[-6000:]}")
        yield {
            "conn": conn,
            "target": target,
            "previous": previous,
            "latest": latest,
            "customer": customer,
            "other": other,
            "expiring": expiring,
            "revoked": revoked,
        }
    finally:
        drop_database(conn)


@pytest.fixture
def pg(decisions_build):
    with warehouse.connect(decisions_build["conn"], autocommit=True) as connection:
        yield connection


# -- dbt unit tests: one per policy rule ----------------------------------------------------------------
def test_dbt_unit_tests_of_every_policy_rule_pass(decisions_build):
    results = json.loads((decisions_build["target"] / "run_results.json").read_text())["results"]
    unit = {r["unique_id"].rsplit(".", 1)[-1]: r["status"] for r in results if r["unique_id"].startswith("unit_test.")}
    expected = {
        "test_credit_terms_rules",  # new customer, limit sizing, most specific rule, incentive, approval levels
        "test_credit_overrides_expiry",
        "test_credit_list_statuses",
        "test_group_credit_alerts",
    }
    assert expected <= set(unit), f"unit tests not run: {expected - set(unit)}"
    assert {name: unit[name] for name in expected} == dict.fromkeys(expected, "pass")


def test_decision_models_never_write_to_the_override_or_whatif_schemas(decisions_build):
    manifest = json.loads((decisions_build["target"] / "manifest.json").read_text())
    schemas = {node["schema"] for node in manifest["nodes"].values() if node["resource_type"] in ("model", "seed")}
    assert "decisions" not in schemas and "whatif" not in schemas
    assert "marts_decisions" in schemas


# -- the decisions mart -------------------------------------------------------------------------------------
def test_one_decision_per_scored_open_customer_month(pg):
    missing = pg.execute(
        """
        select count(*) from ml.credit_scores as scores
        inner join marts_core.fct_customer_months as months
            on scores.customer_id = months.customer_id and scores.as_of_month = months.month_start_date
        left join marts_decisions.fct_credit_decisions as decisions
            on scores.customer_id = decisions.customer_id and scores.as_of_month = decisions.month_start_date
        where months.is_account_open and decisions.customer_id is null
        """
    ).fetchone()[0]
    assert missing == 0
    months = pg.execute("select count(distinct month_start_date) from marts_decisions.fct_credit_decisions").fetchone()[
        0
    ]
    assert months == SYNTHETIC_MONTHS


def test_policy_rules_hold_on_every_decision(pg):
    broken = pg.execute(
        """
        select
            sum(case when policy_segment = 'new_customer'
                and not (payment_cycle = 'prepaid' and prepayment_rate = 1
                         and advance_bills_required = greatest(3 - bills_issued_to_date, 0)) then 1 else 0 end),
            sum(case when (credit_period_days > 90 or credit_limit_amount > 500000) <> is_approval_required
                then 1 else 0 end),
            sum(case when credit_list_status = 'blacklist' and policy_segment <> 'blacklist' then 1 else 0 end),
            sum(case when change_summary is null or terms_reason is null then 1 else 0 end),
            count(*)
        from marts_decisions.fct_credit_decisions
        """
    ).fetchone()
    assert broken[:4] == (0, 0, 0, 0)
    assert broken[4] > 0


def test_credit_limits_are_sized_from_the_expected_bill_and_the_grade(pg):
    mismatches = pg.execute(
        """
        select count(*)
        from marts_decisions.fct_credit_decisions as decisions
        inner join reference.credit_policy_terms as terms on decisions.policy_rule_id = terms.policy_rule_id
        where not decisions.has_override
            and decisions.credit_limit_amount <> ceiling(
                decisions.expected_monthly_bill_amount * (1 - decisions.prepayment_rate)
                * terms.credit_limit_bill_multiple / 100
            ) * 100
        """
    ).fetchone()[0]
    assert mismatches == 0
    basis = dict(
        pg.execute(
            "select expected_bill_basis, count(*) from marts_decisions.fct_credit_decisions group by 1"
        ).fetchall()
    )
    assert basis.get("forecast", 0) > 0


def test_overrides_are_respected_until_they_expire(pg, decisions_build):
    rows = {
        (row[0], row[1]): row[2:]
        for row in pg.execute(
            """
            select customer_id, month_start_date, decision_grade, grade_basis, credit_period_days, approval_level,
                override_ids, change_summary, credit_limit_amount
            from marts_decisions.fct_credit_decisions
            where customer_id in (%s, %s) and month_start_date in (%s, %s)
            """,
            [
                decisions_build["customer"],
                decisions_build["other"],
                decisions_build["previous"],
                decisions_build["latest"],
            ],
        ).fetchall()
    }
    customer, expiring = decisions_build["customer"], decisions_build["expiring"]
    grade, basis, period, approval, overrides, _, _ = rows[(customer, decisions_build["previous"])]
    assert (grade, basis, period, approval, overrides) == ("B", "override", 100, "finance_head", expiring)
    grade, basis, period, approval, overrides, summary, _ = rows[(customer, decisions_build["latest"])]
    assert overrides is None and basis == "score" and period != 100
    assert f"override {expiring} ended" in summary
    other, revoked = decisions_build["other"], decisions_build["revoked"]
    assert rows[(other, decisions_build["previous"])][4] == revoked
    assert rows[(other, decisions_build["previous"])][6] == Decimal("12345.00")
    assert rows[(other, decisions_build["latest"])][4] is None


def test_segment_cube_adds_up_over_each_of_the_eight_dimensions(pg, decisions_build):
    rows = pg.execute(
        """
        select segment_dimension, sum(customer_count), sum(expected_loss_amount)
        from marts_decisions.fct_credit_decision_segments
        where month_start_date = %s group by 1
        """,
        [decisions_build["latest"]],
    ).fetchall()
    totals = {dimension: (count, loss) for dimension, count, loss in rows}
    assert set(totals) == {
        "all",
        "region_code",
        "industry_code",
        "customer_type",
        "settlement_method",
        "tariff_code",
        "decision_grade",
        "payment_method",
        "value_tier",
    }
    assert len({count for count, _ in totals.values()}) == 1
    assert len({round(loss, 2) for _, loss in totals.values()}) == 1


def test_expected_loss_is_pd_times_exposure_times_loss_rate(pg):
    worst = pg.execute(
        """
        select max(abs(
            expected_loss_amount - bad_12m_probability * exposure_at_default_amount * loss_given_default_rate
        ))
        from marts_decisions.fct_credit_decisions
        """
    ).fetchone()[0]
    assert worst < 0.01


def test_list_periods_have_entry_and_exit_dates(pg):
    rows = pg.execute(
        """
        select list_name, count(*), sum(case when exit_date is not null then 1 else 0 end),
            sum(case when exit_date is not null and exit_date <= entry_date then 1 else 0 end),
            sum(case when is_current and exit_date is not null then 1 else 0 end)
        from marts_decisions.fct_credit_list_periods group by 1
        """
    ).fetchall()
    assert {row[0] for row in rows} <= {"good_standing", "watch_list", "blacklist"}
    assert "good_standing" in {row[0] for row in rows}
    assert all(row[3] == 0 and row[4] == 0 for row in rows)


def test_group_alerts_are_consistent(pg):
    alerts = pg.execute(
        """
        select count(*), sum(case when is_hidden_over_limit_alert and (members_over_own_limit_count > 0
                or group_exposure_amount <= group_limit_amount) then 1 else 0 end),
            sum(case when is_over_group_limit and alert_message is null then 1 else 0 end)
        from marts_decisions.fct_group_credit_exposure
        """
    ).fetchone()
    assert alerts[0] > 0
    assert alerts[1:] == (0, 0)


# -- overrides: the store and its audit trail -------------------------------------------------------------
@pytest.fixture
def empty_store(fresh_database):
    with warehouse.connect(fresh_database, autocommit=True) as connection:
        store.ensure_store(connection)
        yield connection


def test_override_audit_trail_is_never_rewritten(empty_store):
    pg = empty_store
    first = add_override(
        pg,
        "C000000001",
        OverrideTerms(credit_limit_amount=Decimal("8000")),
        "new contract",
        expires_on=dt.date(2025, 6, 30),
        effective_from=dt.date(2025, 1, 1),
        created_by="ana",
    )
    before = pg.execute("select * from decisions.credit_overrides order by override_event_id").fetchall()
    for statement in (
        "update decisions.credit_overrides set reason = 'changed'",
        "delete from decisions.credit_overrides",
        "truncate decisions.credit_overrides",
    ):
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="insert-only"):
            pg.execute(statement)
    ended = expire_override(pg, first, "contract cancelled", effective_from=dt.date(2025, 3, 1), created_by="bo")
    assert ended.last_day_in_force == dt.date(2025, 2, 28)
    assert ended.revoked_by == "bo" and ended.revoke_reason == "contract cancelled"
    after = pg.execute("select * from decisions.credit_overrides order by override_event_id").fetchall()
    assert after[: len(before)] == before
    assert [(row[1], row[2]) for row in after] == [(first, "add"), (first, "expire")]
    with pytest.raises(OverrideError, match="already ended"):
        expire_override(pg, first, "again", effective_from=dt.date(2025, 2, 1), created_by="bo")
    history = store.override_history(pg, customer_id="C000000001")
    assert [event["created_by"] for event in history] == ["ana", "bo"]
    assert store.list_overrides(pg, as_of=dt.date(2025, 2, 15))[0].override_id == first
    assert store.list_overrides(pg, as_of=dt.date(2025, 3, 15)) == []


def test_the_store_is_the_dbt_macro():
    ddl = store.store_ddl()
    assert ddl.startswith("create schema if not exists decisions;")
    model = (
        settings.DBT_PROJECT_DIR / "models" / "staging" / "decisions" / "stg_decisions__credit_overrides.sql"
    ).read_text()
    assert "gridcredit.create_credit_override_store()" in model


def _add(pg, **changes):
    arguments = {
        "customer_id": "C000000001",
        "terms": OverrideTerms(credit_limit_amount=Decimal("1000")),
        "reason": "why",
        "expires_on": dt.date(2025, 6, 30),
        "effective_from": dt.date(2025, 1, 1),
        "created_by": "ana",
    }
    arguments.update(changes)
    return add_override(pg, **arguments)


def test_override_without_reason_is_refused(empty_store):
    with pytest.raises(OverrideError, match="reason is required"):
        _add(empty_store, reason="  ")


def test_override_without_any_term_is_refused(empty_store):
    with pytest.raises(OverrideError, match="at least one"):
        _add(empty_store, terms=OverrideTerms())


def test_override_with_unknown_grade_is_refused(empty_store):
    with pytest.raises(OverrideError, match="grade must be one of"):
        _add(empty_store, terms=OverrideTerms(final_grade="D"))


def test_override_expiring_before_it_starts_is_refused(empty_store):
    with pytest.raises(OverrideError, match="before the start"):
        _add(empty_store, expires_on=dt.date(2024, 12, 31))


def test_override_needs_an_expiry(empty_store):
    with pytest.raises(OverrideError, match="exactly one"):
        _add(empty_store, expires_on=None)


# -- worklists ------------------------------------------------------------------------------------------
def test_export_worklists(decisions_build, pg, tmp_path, monkeypatch):
    from gridcredit.decisions.cli import export_app

    monkeypatch.setenv("WAREHOUSE_URL", decisions_build["conn"].url)
    month = f"{decisions_build['latest']:%Y-%m}"
    result = CliRunner().invoke(export_app, ["worklists", "--month", month, "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    names = sorted(path.name for path in tmp_path.iterdir())
    assert names == sorted(
        f"{name}_{month}.{ext}"
        for name in ("collections_worklist", "theft_inspection_list", "terms_changes")
        for ext in ("csv", "xlsx")
    )

    def read(name):
        with (tmp_path / f"{name}_{month}.csv").open(encoding="utf-8-sig", newline="") as handle:
            return list(csv.DictReader(handle))

    collections = read("collections_worklist")
    size = pg.execute(
        "select parameter_value from reference.credit_policy_parameters "
        "where parameter_name = 'collections_worklist_size'"
    ).fetchone()[0]
    at_risk = pg.execute(
        "select count(*) from marts_decisions.fct_collections_worklist where month_start_date = %s",
        [decisions_build["latest"]],
    ).fetchone()[0]
    assert len(collections) == min(int(size), at_risk) > 0
    priorities = [float(row["priority_amount"]) for row in collections]
    assert priorities == sorted(priorities, reverse=True)
    assert [int(row["priority_rank"]) for row in collections] == list(range(1, len(collections) + 1))
    theft = read("theft_inspection_list")
    assert len(theft) == 20  # the synthetic ML step's inspection capacity
    changes = read("terms_changes")
    expected = pg.execute(
        "select count(*) from marts_decisions.fct_credit_decisions where month_start_date = %s and has_terms_change",
        [decisions_build["latest"]],
    ).fetchone()[0]
    assert len(changes) == expected > 0
    assert all(row["change_summary"].startswith("Changed:") and row["terms_reason"] for row in changes)
    from openpyxl import load_workbook

    sheet = load_workbook(tmp_path / f"collections_worklist_{month}.xlsx", read_only=True).active
    assert sheet.max_row == len(collections) + 1


def test_export_worklists_for_an_unknown_month_fails_clearly(decisions_build, tmp_path, monkeypatch):
    from gridcredit.decisions.cli import export_app

    monkeypatch.setenv("WAREHOUSE_URL", decisions_build["conn"].url)
    result = CliRunner().invoke(export_app, ["worklists", "--month", "1999-01", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "no credit decisions for 1999-01" in result.output


# -- what-if ---------------------------------------------------------------------------------------------
def test_whatif_rerun_with_replace_keeps_one_simulation_of_that_name(decisions_build):
    """`make demo` reruns the example simulation with --replace: the earlier one and its rows go, in the
    same transaction, so the what-if list holds one example however often the demo runs."""
    from gridcredit.decisions.whatif import simulate

    first = simulate(decisions_build["conn"], POLICY_SEED, name="rerun", target_path=decisions_build["target"])
    second = simulate(
        decisions_build["conn"], POLICY_SEED, name="rerun", target_path=decisions_build["target"], replace=True
    )
    assert second.simulation_id != first.simulation_id
    with warehouse.connect(decisions_build["conn"]) as pg:
        kept = pg.execute("select simulation_id from whatif.simulations where simulation_name = 'rerun'").fetchall()
        leftovers = {
            table: pg.execute(
                f"select count(*) from whatif.{table} where simulation_id = %s", [first.simulation_id]
            ).fetchone()[0]
            for table in ("policy_terms", "customer_terms", "segment_results")
        }
        rows = pg.execute(
            "select count(*) from whatif.customer_terms where simulation_id = %s", [second.simulation_id]
        ).fetchone()[0]
    assert kept == [(second.simulation_id,)]
    assert leftovers == {"policy_terms": 0, "customer_terms": 0, "segment_results": 0}
    assert rows > 0


def test_whatif_changes_exactly_one_grades_terms(decisions_build, tmp_path):
    from gridcredit.decisions.whatif import simulate

    policy = tmp_path / "longer_b_period.csv"
    lines = POLICY_SEED.read_text(encoding="utf-8").splitlines()
    changed = [
        line.replace("STD-B,standard,B,,,,semi_monthly,0.30,1.5,15,", "STD-B,standard,B,,,,semi_monthly,0.30,1.5,30,")
        for line in lines
    ]
    assert changed != lines
    policy.write_text("\n".join(changed) + "\n", encoding="utf-8")
    # the build's target folder: dbt parses only what changed
    result = simulate(decisions_build["conn"], policy, name="grade B: 30 days", target_path=decisions_build["target"])
    with warehouse.connect(decisions_build["conn"]) as pg:
        rows = pg.execute(
            """
            select current_policy_rule_id, decision_grade, current_credit_period_days, alternative_credit_period_days,
                has_terms_change, current_credit_limit_amount = alternative_credit_limit_amount
            from whatif.customer_terms where simulation_id = %s
            """,
            [result.simulation_id],
        ).fetchall()
        segments = pg.execute(
            "select terms_change_count from whatif.segment_results"
            " where simulation_id = %s and segment_dimension = 'all'",
            [result.simulation_id],
        ).fetchone()[0]
        overridden = pg.execute(
            "select count(*) from marts_decisions.fct_credit_decisions where month_start_date = %s "
            "and policy_rule_id = 'STD-B' and has_override",
            [decisions_build["latest"]],
        ).fetchone()[0]
    assert result.month == f"{decisions_build['latest']:%Y-%m}"
    changed_rows = [row for row in rows if row[4]]
    assert changed_rows, "no customer on rule STD-B this month: the what-if proves nothing"
    assert all(row[0] == "STD-B" and row[1] == "B" for row in changed_rows)
    assert all(row[3] == row[2] + 15 and row[5] for row in changed_rows)
    assert len(changed_rows) == sum(1 for row in rows if row[0] == "STD-B") - overridden
    assert result.terms_change_count == len(changed_rows) == segments
    summary = result.summary
    assert summary["alternative_exposure_at_default_amount"] > summary["current_exposure_at_default_amount"]
    assert summary["alternative_expected_loss_amount"] >= summary["current_expected_loss_amount"]
    assert summary["current_prepayment_coverage_rate"] == summary["alternative_prepayment_coverage_rate"]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda text: text.replace("rule_note", "note"), "unexpected: note"),
        (lambda text: text.replace(",semi_monthly,0.30,", ",fortnightly,0.30,", 1), "payment_cycle must be one of"),
        (lambda text: text.replace(",weekly,0.50,2.0,0,", ",weekly,1.50,2.0,0,", 1), "prepayment_rate must be between"),
        (lambda text: text + "STD-B2,standard,B,,,,monthly,0,0,10,1,duplicate\n", "same segment and selectors"),
    ],
)
def test_whatif_refuses_a_bad_policy_file(tmp_path, edit, message):
    from gridcredit.decisions.whatif import PolicyFileError, read_policy_file

    policy = tmp_path / "policy.csv"
    policy.write_text(edit(POLICY_SEED.read_text(encoding="utf-8")), encoding="utf-8")
    with pytest.raises(PolicyFileError, match=message):
        read_policy_file(policy)


# -- reports ----------------------------------------------------------------------------------------------
def _pdf_text(path: Path) -> str:
    try:
        from pypdf import PdfReader
    except ImportError:  # pragma: no cover - dev dependency
        if os.environ.get("CI") == "true":
            pytest.fail("pypdf is needed to read the report PDFs: pip install pypdf")
        pytest.skip("pypdf not installed")
    text = "\n".join(page.extract_text() for page in PdfReader(path).pages)
    return unicodedata.normalize("NFKC", text)  # Chromium's fonts use ligatures ("ﬁ")


@pytest.fixture(scope="module")
def chromium():
    from gridcredit.decisions.reports import ReportError, chromium_path

    try:
        return chromium_path()
    except ReportError as error:
        if os.environ.get("CI") == "true":
            pytest.fail(str(error))
        pytest.skip(str(error))


def test_customer_report(decisions_build, chromium, tmp_path, monkeypatch):
    from gridcredit.decisions.cli import report_app

    monkeypatch.setenv("WAREHOUSE_URL", decisions_build["conn"].url)
    customer, month = decisions_build["customer"], decisions_build["previous"]
    result = CliRunner().invoke(report_app, ["customer", customer, "--month", f"{month:%Y-%m}", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    html = (tmp_path / f"customer_{customer}_{month:%Y-%m}.html").read_text(encoding="utf-8")
    with warehouse.connect(decisions_build["conn"]) as pg:
        limit, bill = pg.execute(
            "select credit_limit_amount, expected_monthly_bill_amount from marts_decisions.fct_credit_decisions "
            "where customer_id = %s and month_start_date = %s",
            [customer, month],
        ).fetchone()
    sections = [
        "Identity (masked)",
        "Recommended terms",
        "Grade history with reasons",
        "Payment record",
        "Arrears and aging",
        "Consumption and forecast",
        "Group membership",
        "Overrides",
    ]
    for section in sections:
        assert section in html
    assert f"{float(limit):,.0f}" in html and f"{float(bill):,.0f}" in html
    assert decisions_build["expiring"] in html and "testing expiry" in html
    assert "<svg" in html
    text = _pdf_text(tmp_path / f"customer_{customer}_{month:%Y-%m}.pdf")
    for section in sections:
        assert section in text
    assert f"{float(limit):,.0f}" in text and decisions_build["expiring"] in text
    assert "finance_head" in text  # the overridden 100-day credit period needs the finance head


def test_monthly_report(decisions_build, chromium, tmp_path, monkeypatch):
    from gridcredit.decisions.cli import report_app

    monkeypatch.setenv("WAREHOUSE_URL", decisions_build["conn"].url)
    month = decisions_build["latest"]
    result = CliRunner().invoke(report_app, ["monthly", "--month", f"{month:%Y-%m}", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    html = (tmp_path / f"monthly_credit_risk_{month:%Y-%m}.html").read_text(encoding="utf-8")
    with warehouse.connect(decisions_build["conn"]) as pg:
        customers, inspections = pg.execute(
            "select count(*), sum(case when is_on_inspection_list then 1 else 0 end) "
            "from marts_decisions.fct_credit_decisions where month_start_date = %s",
            [month],
        ).fetchone()
        grade_counts = pg.execute(
            "select decision_grade, count(*) from marts_decisions.fct_credit_decisions "
            "where month_start_date = %s group by 1",
            [month],
        ).fetchall()
    sections = [
        "Portfolio grade mix",
        "Grade migration",
        "Recovery rate",
        "Top arrears",
        "Arrears early warnings",
        "Theft inspection list",
        "Group alerts",
    ]
    for section in sections:
        assert section in html
    assert html.count("<svg") >= 3
    assert f"{inspections} customers on the inspection list" in html
    text = _pdf_text(tmp_path / f"monthly_credit_risk_{month:%Y-%m}.pdf")
    for section in sections:
        assert section in text
    assert f"Monthly credit risk report {month:%Y-%m}" in text
    assert str(customers) in text
    for _grade, count in grade_counts:
        assert str(count) in text


def test_report_for_an_unknown_customer_fails_clearly(decisions_build, tmp_path, monkeypatch):
    from gridcredit.decisions.cli import report_app

    monkeypatch.setenv("WAREHOUSE_URL", decisions_build["conn"].url)
    result = CliRunner().invoke(report_app, ["customer", "C999999999", "--out", str(tmp_path), "--no-pdf"])
    assert result.exit_code == 2
    assert "no customer C999999999" in result.output
    assert shutil.which("true")  # keep the import of shutil honest on minimal systems
