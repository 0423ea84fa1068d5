"""The application's database role writes what the product writes, and nothing that rewrites history or
the schema. These tests log in AS that role -- created here when the suite's cluster lacks it, granted
exactly as production grants it (``manage.py grant_app_role``) -- while the suite itself, like the
migrations, connects as the owner (docs/database-roles.md)."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.audit.services import record_event
from apps.audit.tasks import apply_retention as audit_retention
from apps.metrics import retention
from apps.metrics.rollups import storage as rollup_storage
from apps.metrics.rollups.tiers import BY_NAME
from apps.metrics.storage import TABLE, ddl, partitioned
from apps.metrics.tasks import ensure_partitions
from fiberstack.dbroles import create_app_role_sql, grant_statements
from tests.metrics.factories import post, sample_count

# A role of the test cluster only; a fixed password so that every xdist worker can log in with it.
APP_ROLE = "fiberstack_test_app"
APP_PASSWORD = "fiberstack-test-app"

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="session")
def app_role(django_db_setup: Any, django_db_blocker: Any) -> str:
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(create_app_role_sql(APP_ROLE, APP_PASSWORD))
    return APP_ROLE


@pytest.fixture
def granted(app_role: str) -> str:
    """Grant as production does after every migrate (another test may have re-created tables since)."""
    call_command("grant_app_role", app_role, stdout=io.StringIO())
    return app_role


@pytest.fixture
def app_db(granted: str) -> Iterator[psycopg.Connection[Any]]:
    """A separate login as the app role, autocommit, for statements the product never sends."""
    s = connection.settings_dict
    conn = psycopg.connect(host=s["HOST"], port=s["PORT"] or 5432, dbname=s["NAME"], user=granted,
                           password=APP_PASSWORD, autocommit=True)
    try:
        yield conn
    finally:
        conn.close()


@contextmanager
def django_as_app_role() -> Iterator[None]:
    """Reconnect Django's own connection as the app role, so product code (views, tasks, services) runs
    with exactly the app role's privileges; back to the owner afterwards (the flush needs it)."""
    s = connection.settings_dict
    saved = s["USER"], s["PASSWORD"]
    connection.close()
    s["USER"], s["PASSWORD"] = APP_ROLE, APP_PASSWORD
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_user")
            assert cursor.fetchone()[0] == APP_ROLE
        yield
    finally:
        connection.close()
        s["USER"], s["PASSWORD"] = saved


def _owner_of(relation: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = to_regclass(%s)", [relation])
        row = cursor.fetchone()
    return row[0] if row else ""


# -- what the app role may not do ------------------------------------------------------------------------

@pytest.mark.parametrize("statement", [
    "UPDATE audit_auditevent SET action = 'rewritten'",
    "DELETE FROM audit_auditevent",
    "TRUNCATE audit_auditevent",
    "ALTER TABLE audit_auditevent DISABLE TRIGGER audit_auditevent_append_only",
    "ALTER TABLE audit_auditevent DISABLE TRIGGER USER",
    "DROP TRIGGER audit_auditevent_refuse_truncate ON audit_auditevent",
    "DROP TABLE audit_auditevent",
])
def test_app_role_cannot_change_or_remove_audit_rows(org: Any, app_db: psycopg.Connection[Any],
                                                     statement: str) -> None:
    event = record_event(action="test.kept", actor=None, organization=org)
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        app_db.execute(statement)
    assert AuditEvent.objects.get(pk=event.pk).action == "test.kept"


def test_app_role_cannot_delete_audit_rows_by_setting_the_retention_switch(
        org: Any, granted: str, app_db: psycopg.Connection[Any]) -> None:
    event = record_event(action="test.kept", actor=None, organization=org)
    # Even with the DELETE privilege handed back, the trigger wants the table's owner.
    with connection.cursor() as cursor:
        cursor.execute(f"GRANT DELETE ON audit_auditevent TO {granted}")
    with app_db.transaction():
        app_db.execute("SET LOCAL fiberstack.audit_retention = 'on'")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            app_db.execute("DELETE FROM audit_auditevent")
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_app_role_cannot_alter_any_table(app_db: psycopg.Connection[Any]) -> None:
    tables = [row[0] for row in app_db.execute(
        "SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')"
    )]
    assert {"audit_auditevent", TABLE, "metrics_series"} <= set(tables)
    for table in tables:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="must be owner"):
            app_db.execute(f"ALTER TABLE {table} ADD COLUMN fs_probe integer")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app_db.execute(f"TRUNCATE {table}")


def test_tables_the_owner_creates_later_are_granted_without_another_grant(
        app_db: psycopg.Connection[Any]) -> None:
    with connection.cursor() as cursor:  # as the owner, like a later migration
        cursor.execute("CREATE TABLE fs_later_migration (id bigserial PRIMARY KEY, note text)")
    try:
        app_db.execute("INSERT INTO fs_later_migration (note) VALUES ('written by the app role')")
        assert app_db.execute("SELECT note FROM fs_later_migration").fetchall() == [("written by the app role",)]
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app_db.execute("ALTER TABLE fs_later_migration ADD COLUMN fs_probe integer")
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE fs_later_migration")


def test_app_role_owns_nothing_and_cannot_create(app_db: psycopg.Connection[Any]) -> None:
    owned = app_db.execute(
        "SELECT count(*) FROM pg_class WHERE relowner = current_user::regrole "
        "UNION ALL SELECT count(*) FROM pg_proc WHERE proowner = current_user::regrole"
    ).fetchall()
    assert owned == [(0,), (0,)]
    for statement in ("CREATE TABLE fs_probe (id integer)", "CREATE TEMPORARY TABLE fs_probe (id integer)",
                      "CREATE FUNCTION fs_probe() RETURNS integer LANGUAGE sql AS 'SELECT 1'"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app_db.execute(statement)


@pytest.mark.parametrize(("call", "error"), [
    # Only partitions named like the table's own, only tables the owner owns, never the DEFAULT partition.
    (f"fiberstack_create_partition('{TABLE}', 'metrics_evil', now(), now() + interval '1 day')",
     psycopg.errors.InvalidName),
    (f"fiberstack_drop_partition('{TABLE}', '{partitioned.DEFAULT_PARTITION}')", psycopg.errors.InvalidName),
    ("fiberstack_drop_partition('audit_auditevent', 'audit_auditevent_p20260101')", psycopg.errors.RaiseException),
    ("audit_purge_events(0)", psycopg.errors.InsufficientPrivilege),
])
def test_owner_functions_do_only_their_one_job(app_db: psycopg.Connection[Any], call: str,
                                               error: type[Exception]) -> None:
    with pytest.raises(error):
        app_db.execute(f"SELECT {call}")


# -- what the product does as the app role ---------------------------------------------------------------

def test_ingest_stores_samples_as_the_app_role(org: Any, write_token: str, granted: str) -> None:
    body = [{"host": "web-1", "name": "load", "value": 0.5, "time": time.time()}]
    with django_as_app_role():
        response = post("/api/v1/metrics", json.dumps(body), token=write_token, content_type="application/json")
        assert response.status_code == 200, response.content
        assert sample_count(org, "load") == 1


def test_a_retried_batch_and_a_repeat_in_the_body_are_stored_once_as_the_app_role(
        org: Any, write_token: str, granted: str) -> None:
    """The upsert path (a key already stored, or repeated in the body) creates nothing, not even a
    temporary table, which the app role may not do: a retry under `make run` answered 500."""
    now = time.time()
    body = json.dumps([{"host": "web-1", "name": "load", "value": 0.5, "time": now},
                       {"host": "web-1", "name": "load", "value": 0.7, "time": now},
                       {"host": "web-1", "name": "load", "value": 0.9, "time": now - 10}])
    with django_as_app_role():
        for attempt in range(2):
            response = post("/api/v1/metrics", body, token=write_token, content_type="application/json")
            assert response.status_code == 200, (attempt, response.content)
            assert json.loads(response.content)["accepted"] == 3
        assert sample_count(org, "load") == 2
        with connection.cursor() as cursor:
            cursor.execute("SELECT s.value FROM metrics_sample s JOIN metrics_series r ON r.id = s.series_id "
                           "WHERE r.organization_id = %s ORDER BY s.time", [org.pk])
            assert [row[0] for row in cursor.fetchall()] == [0.9, 0.7]


def test_beat_creates_partitions_and_moves_default_rows_as_the_app_role(org: Any, write_token: str,
                                                                       granted: str, settings: Any) -> None:
    today = timezone.now().date()
    stray_day = today - dt.timedelta(days=5)  # without its partition, ingest puts the sample in DEFAULT
    stray_partition = partitioned.partition_name(stray_day)
    with connection.cursor() as cursor:
        if stray_day in partitioned.existing_days(cursor):
            ddl.drop_partition(cursor, TABLE, stray_partition)
    stray = dt.datetime.combine(stray_day, dt.time(12), tzinfo=dt.UTC).timestamp()
    settings.FIBERSTACK_PARTITIONS_AHEAD = 9
    with django_as_app_role():
        response = post("/api/v1/metrics", json.dumps([{"name": "late", "value": 1, "time": stray}]),
                        token=write_token, content_type="application/json")
        assert response.status_code == 200, response.content
        summary = ensure_partitions.delay().get()
        with connection.cursor() as cursor:  # the new partitions are readable by the role that asked for them
            cursor.execute(f"SELECT count(*) FROM {stray_partition}")
            assert cursor.fetchone()[0] >= 1
    assert "partitions created" in summary, summary
    # Created on the app role's behalf, owned by the owner: the app role still owns nothing.
    owner = connection.settings_dict["USER"]
    assert _owner_of(stray_partition) == owner
    assert _owner_of(partitioned.partition_name(today + dt.timedelta(days=9))) == owner
    assert sample_count(org, "late") == 1


def test_metrics_retention_drops_partitions_as_the_app_role(granted: str) -> None:
    now = timezone.now()
    old_raw = now - dt.timedelta(days=30)  # raw keeps 7 days, the 1m tier 30: both are past it
    old_1m = now - dt.timedelta(days=60)
    tier = BY_NAME["1m"]
    raw_name = partitioned.partition_name(old_raw.date())
    rollup_name = rollup_storage.partition_name(tier, rollup_storage.partition_start(tier, old_1m.date()))
    with connection.cursor() as cursor:  # as the owner, through the same functions
        ddl.create_partition(cursor, TABLE, raw_name, old_raw.replace(hour=0, minute=0, second=0, microsecond=0),
                             old_raw.replace(hour=0, minute=0, second=0, microsecond=0) + dt.timedelta(days=1))
    rollup_storage.ensure_range(tier, old_1m, old_1m + dt.timedelta(hours=1))
    with django_as_app_role():
        report = retention.apply_retention(now=now)
    assert raw_name in report["raw"]["dropped"]
    assert rollup_name in report["1m"]["dropped"]
    assert _owner_of(raw_name) == "" and _owner_of(rollup_name) == ""


def test_audit_retention_purges_as_the_app_role(org: Any, granted: str, settings: Any) -> None:
    old = record_event(action="test.old", actor=None, organization=org)
    new = record_event(action="test.new", actor=None, organization=org)
    with connection.cursor() as cursor:  # as the owner: backdate one row past the retention
        cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER audit_auditevent_append_only")
        cursor.execute("UPDATE audit_auditevent SET created_at = now() - interval '500 days' WHERE id = %s",
                       [old.pk])
        cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER audit_auditevent_append_only")
    settings.FIBERSTACK_AUDIT_RETENTION_DAYS = 400
    with django_as_app_role():
        assert audit_retention.delay().get() == "deleted 1 audit events"
    assert list(AuditEvent.objects.values_list("pk", flat=True)) == [new.pk]


# -- the container entrypoint sets it up the same way ----------------------------------------------------

def test_container_entrypoint_migrates_as_the_owner_and_grants_the_app_role(app_role: str) -> None:
    s = connection.settings_dict
    name = f"fs_entrypoint_{uuid.uuid4().hex[:8]}"
    server = f"{quote(s['USER'])}:{quote(s['PASSWORD'] or '')}@{s['HOST']}:{s['PORT'] or 5432}"
    owner_url = f"postgres://{server}/{name}"
    admin = psycopg.connect(f"postgres://{server}/postgres", autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        root = Path(__file__).resolve().parents[2]
        env = {
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "DJANGO_SETTINGS_MODULE": "fiberstack.settings.prod",
            "SECRET_KEY": "entrypoint-test-" + "x" * 40,
            "DATABASE_OWNER_URL": owner_url,
            "DATABASE_URL": f"postgres://{app_role}:{APP_PASSWORD}@{s['HOST']}:{s['PORT'] or 5432}/{name}",
        }
        result = subprocess.run(["bash", str(root / "docker" / "entrypoint.sh"), "migrate"], cwd=root, env=env,
                                capture_output=True, text=True, timeout=300, check=False)
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"granted '{app_role}'" in result.stdout
        with psycopg.connect(owner_url) as conn:
            row = conn.execute(
                "SELECT pg_get_userbyid(relowner), has_table_privilege(%(app)s, oid, 'INSERT'), "
                "has_table_privilege(%(app)s, oid, 'UPDATE'), has_table_privilege(%(app)s, oid, 'TRUNCATE'), "
                "has_function_privilege(%(app)s, 'audit_purge_events(integer)', 'EXECUTE') "
                "FROM pg_class WHERE oid = 'audit_auditevent'::regclass", {"app": app_role}).fetchone()
        assert row == (s["USER"], True, False, False, True)
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def test_the_setup_page_shows_the_grants_the_code_runs() -> None:
    page = (Path(__file__).resolve().parents[2] / "docs" / "database-roles.md").read_text()
    statements = grant_statements(owner="fiberstack_owner", app="fiberstack_app", database="fiberstack")
    assert "\n".join(f"{statement};" for statement in statements) in page
