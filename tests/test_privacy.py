"""Personal data (issue 7): keyed pseudonyms, the personal-data scanner, the retention purge.

The scanner looks for Chinese resident ID numbers (check digit verified) and mobile numbers. It must
find nothing in the published tables and in dbt's target/ and logs/, and must find the values planted
in the restricted schema (so it can fail). Superset's metadata database is scanned in tests/test_bi.py
(it needs the running server).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import subprocess

import psycopg
import pytest
from conftest import GRIDCREDIT_BIN, clone_database, drop_database

from gridcredit import privacy, settings

PUBLISHED = r"^(marts_.*|ml|reference|whatif|intermediate|decisions)$"


def test_scanner_finds_ids_and_phones_and_ignores_pseudonyms():
    text = "name,110105198001011234,13812345678\n"
    kinds = [kind for kind, _ in privacy.find_personal_values(text)]
    assert kinds == ["phone"], "a wrong check digit is not an ID number"
    from ingest_helpers import resident_id

    valid = resident_id()
    assert [k for k, _ in privacy.find_personal_values(f"x {valid} y")] == ["resident_id"]
    # Hex pseudonyms and prefixed keys hold digit runs but are not personal values.
    pseudonym = "a13812345678" + "0" * 52
    assert privacy.find_personal_values(f"{pseudonym} B{valid[:12]} C13812345678") == []


def test_no_personal_data_in_published_tables_but_the_restricted_schema_holds_it(built_warehouse):
    with psycopg.connect(built_warehouse.url) as pg:
        published = privacy.scan_database(pg, PUBLISHED)
        restricted = privacy.scan_database(pg, r"^restricted$")
    assert published == [], published[:10]
    kinds = {hit.kind for hit in restricted}
    assert kinds == {"resident_id", "phone"}, "the scanner must find the values planted in restricted"
    assert {hit.where.split(".")[1] for hit in restricted} == {
        "customer_personal_data",
        "enterprise_people_personal_data",
    }


def test_no_personal_data_nor_key_in_dbt_target_and_logs(built_warehouse):
    folders = [settings.DBT_PROJECT_DIR / "target", settings.DBT_PROJECT_DIR / "logs"]
    assert all(folder.exists() for folder in folders)
    assert privacy.scan_files(folders) == []
    key = privacy.pseudonym_key()
    secrets = [key.hex(), *privacy._padded_keys(key)]
    for folder in folders:
        for path in folder.rglob("*"):
            if path.is_file():
                text = path.read_bytes().decode("utf-8", errors="replace")
                assert not any(secret in text for secret in secrets), f"the pseudonym key leaked into {path}"
    with psycopg.connect(built_warehouse.url) as pg:
        # The key lives outside the database: in no role or database setting.
        stored = pg.execute(
            "select count(*) from pg_db_role_setting where array_to_string(setconfig, ',') ~ 'pseudonym'"
        ).fetchone()[0]
    assert stored == 0


def test_pseudonyms_are_keyed_hmacs(built_warehouse):
    with psycopg.connect(built_warehouse.url) as pg:
        rows = pg.execute(
            "select id_number, id_number_key from restricted.customer_personal_data order by customer_id limit 20"
        ).fetchall()
    assert rows
    for clear, key in rows:
        assert key == privacy.pseudonym(clear)
        assert key != hashlib.md5(clear.strip().upper().encode()).hexdigest()
        assert key != hashlib.sha256(clear.strip().upper().encode()).hexdigest()
        assert key != privacy.pseudonym(clear, key=b"another key of sixteen bytes")


def test_a_session_without_the_key_cannot_compute_pseudonyms(built_warehouse):
    """Fail closed: without the key the staging views error instead of emitting unkeyed hashes."""
    with psycopg.connect(built_warehouse.url) as pg:
        with pytest.raises(psycopg.errors.UndefinedObject, match="pseudonym"):
            pg.execute("select id_number_key from staging.stg_billing__customers limit 1").fetchall()


@pytest.fixture
def clone(built_warehouse):
    conn = clone_database(built_warehouse)
    yield conn
    drop_database(conn)


def _purge(conn, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, WAREHOUSE_URL=conn.url)
    return subprocess.run(
        [GRIDCREDIT_BIN, "privacy", "purge", *args], env=env, capture_output=True, text=True, timeout=600
    )


def _plant_purge_cases(pg, cutoff: dt.date) -> dict:
    """Make one enterprise's every customer account closed before the cut-off, and plant rejected lines.

    Returns what the purge must clear (and keep): the enterprise, its people's pseudonyms, reject lines.
    """
    enterprise = pg.execute(
        "select enterprise_id from raw_billing.customers where nullif(enterprise_id, '') is not null"
        " group by 1 order by count(distinct customer_id), 1 limit 1"
    ).fetchone()[0]
    closed = cutoff - dt.timedelta(days=30)
    members = [
        row[0]
        for row in pg.execute(
            "update raw_billing.customers set close_date = %s where enterprise_id = %s returning customer_id",
            [closed.isoformat(), enterprise],
        ).fetchall()
    ]
    pg.execute(
        "update restricted.customer_personal_data set close_date = %s where customer_id = any(%s)", [closed, members]
    )
    people = pg.execute(
        "select legal_representative_id_number, legal_representative_key, actual_controller_key"
        " from restricted.enterprise_people_personal_data where enterprise_id = %s",
        [enterprise],
    ).fetchone()
    assert people is not None, f"{enterprise} has no restricted people row"
    closed_id, open_id = (
        pg.execute(
            "select id_number from restricted.customer_personal_data where close_date " + where + " limit 1",
            [cutoff],
        ).fetchone()[0]
        for where in ("< %s", ">= %s or close_date is null")
    )
    load_id, path = pg.execute("select load_id, file_path from ops.load_ledger order by load_id limit 1").fetchone()
    old_load = pg.execute(
        "insert into ops.load_ledger (system, table_name, file_path, file_sha256, status, started_at)"
        " values ('billing', 'customers', '/old/customers.csv', 'old', 'failed', %s) returning load_id",
        [dt.datetime(2000, 1, 1, tzinfo=dt.UTC)],
    ).fetchone()[0]
    lines = {
        "closed customer": (load_id, f"C9,person,Someone,{closed_id},13800000000"),
        "legal representative": (load_id, f"{enterprise},Acme,x,Someone,{people[0]}"),
        "open customer": (load_id, f"C8,person,Someone Else,{open_id},"),
        "older than the period": (old_load, "C7,person,Old Line,no id"),
    }
    for number, (label, (load, text)) in enumerate(lines.items(), start=900001):
        pg.execute(
            "insert into ops.load_rejects (load_id, file_path, line_number, field, reason, raw_line)"
            " values (%s, %s, %s, 'id_number', %s, %s)",
            [load, path, number, f"planted: {label}", text],
        )
    pg.commit()
    return {"enterprise": enterprise, "members": members, "keys": people[1:], "lines": list(lines)}


def test_retention_purge_removes_clear_values_keeps_pseudonyms_and_logs(clone):
    with psycopg.connect(clone.url) as pg:
        last_close = pg.execute("select max(close_date) from restricted.customer_personal_data").fetchone()[0]
        assert last_close is not None, "the simulated utility closes accounts"
        as_of = last_close + dt.timedelta(days=1)
        cutoff = privacy.cutoff_date("1y", as_of)
        planted = _plant_purge_cases(pg, cutoff)
        before = dict(
            pg.execute(
                "select customer_id, id_number_key from restricted.customer_personal_data where close_date < %s",
                [cutoff],
            ).fetchall()
        )
        kept = pg.execute(
            "select count(*) from restricted.customer_personal_data where close_date is null or close_date >= %s",
            [cutoff],
        ).fetchone()[0]
    assert before, f"no customer closed before {cutoff}"
    assert set(planted["members"]) <= set(before)

    result = _purge(clone, "--closed-for", "1y", "--as-of", as_of.isoformat())
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"purged the personal data of {len(before)} customers" in result.stderr
    enterprise = planted["enterprise"]

    with psycopg.connect(clone.url) as pg:
        logged = {
            row[0]: row[1:]
            for row in pg.execute(
                "select customer_id, fields_removed, raw_rows_updated, restricted_rows_deleted, closed_before"
                " from ops.privacy_purges where customer_id is not null"
            ).fetchall()
        }
        logged_enterprises = {
            row[0]: row[1:]
            for row in pg.execute(
                "select enterprise_id, fields_removed, raw_rows_updated, restricted_rows_deleted, reject_lines_cleared"
                " from ops.privacy_purges where enterprise_id is not null"
            ).fetchall()
        }
        cleared_by_age = pg.execute(
            "select sum(reject_lines_cleared) from ops.privacy_purges"
            " where customer_id is null and enterprise_id is null"
        ).fetchone()[0]
        raw = pg.execute(
            "select customer_id, customer_name, id_number, phone, address, email from raw_billing.customers"
            " where customer_id = any(%s)",
            [list(before)],
        ).fetchall()
        remaining = pg.execute(
            "select count(*), count(*) filter (where customer_id = any(%s)) from restricted.customer_personal_data",
            [list(before)],
        ).fetchone()
        raw_enterprise = pg.execute(
            "select legal_representative_name, legal_representative_id_number, actual_controller_id_number"
            " from raw_registry.enterprises where enterprise_id = %s",
            [enterprise],
        ).fetchall()
        restricted_enterprise = pg.execute(
            "select count(*) from restricted.enterprise_people_personal_data where enterprise_id = %s", [enterprise]
        ).fetchone()[0]
        rejects = dict(
            pg.execute(
                "select substring(reason from 10), raw_line from ops.load_rejects where reason like 'planted: %%'"
            ).fetchall()
        )
    assert set(logged) == set(before)
    assert all(
        fields == ["customer_name", "id_number", "phone", "address", "email"] and rows >= 1 and deleted == 1
        for fields, rows, deleted, _ in logged.values()
    )
    assert all(closed_before == cutoff for *_, closed_before in logged.values())
    assert remaining == (kept, 0)
    for customer_id, name, id_number, phone, address, email in raw:
        assert (name, phone, address, email) == (None, None, None, None)
        # The pseudonym survives (staging turns `purged:<key>` back into the same key), the ID does not.
        assert id_number == f"purged:{before[customer_id]}"
        assert privacy.find_personal_values(id_number) == []
    # The enterprise whose every account is closed: its legal representative and controller are purged.
    representative_key, controller_key = planted["keys"]
    assert enterprise in logged_enterprises, logged_enterprises
    fields, rows, deleted, lines = logged_enterprises[enterprise]
    assert fields == list(privacy.PURGED_ENTERPRISE_FIELDS) and rows >= 1 and deleted == 1 and lines == 1
    assert restricted_enterprise == 0
    for name, representative_id, controller_id in raw_enterprise:
        assert name is None and representative_id == f"purged:{representative_key}"
        assert controller_id in (None, "") if controller_key is None else controller_id == f"purged:{controller_key}"
    # Rejected raw lines: cleared when they hold a purged customer's or enterprise's values or are
    # older than the period; a line of an open customer stays (a data steward may still need it).
    assert rejects == {
        "closed customer": None,
        "legal representative": None,
        "open customer": rejects["open customer"],
        "older than the period": None,
    }
    assert rejects["open customer"] is not None and cleared_by_age >= 1

    # A second purge finds nothing more to remove; a dbt rebuild does not bring the data back.
    again = _purge(clone, "--closed-for", "1y", "--as-of", as_of.isoformat())
    assert again.returncode == 0 and "purged the personal data of 0 customers" in again.stderr
    env = dict(os.environ, WAREHOUSE_URL=clone.url)
    rebuilt = subprocess.run(
        [
            GRIDCREDIT_BIN,
            "dbt",
            "run",
            "--select",
            "restricted_customer_personal_data",
            "stg_billing__customers",
            "restricted_enterprise_people_personal_data",
            "stg_registry__enterprises",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert rebuilt.returncode == 0, rebuilt.stdout[-3000:]
    with psycopg.connect(clone.url) as pg:
        back = pg.execute(
            "select count(*) from restricted.customer_personal_data where customer_id = any(%s)", [list(before)]
        ).fetchone()[0]
        back_people = pg.execute(
            "select count(*) from restricted.enterprise_people_personal_data where enterprise_id = %s", [enterprise]
        ).fetchone()[0]
        keys_after = pg.execute(
            "select legal_representative_key, actual_controller_key from staging.stg_registry__enterprises"
            " where enterprise_id = %s",
            [enterprise],
        ).fetchone()
        assert pg.execute("select count(*) from ops.privacy_purges where customer_id is not null").fetchone()[0] == len(
            before
        )
    assert back == 0 and back_people == 0
    assert keys_after == (representative_key, controller_key), "the enterprise's pseudonyms must survive the purge"


def test_retention_period_is_validated():
    assert privacy.cutoff_date("3y", dt.date(2026, 2, 28)) == dt.date(2023, 2, 28)
    assert privacy.cutoff_date("18m", dt.date(2024, 8, 31)) == dt.date(2023, 2, 28)
    assert privacy.cutoff_date("90d", dt.date(2024, 3, 31)) == dt.date(2024, 1, 1)
    with pytest.raises(privacy.PrivacyError, match="3y"):
        privacy.parse_period("three years")
