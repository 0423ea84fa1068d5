"""Storage of entries and events: daily partitions through the metrics partition manager, partitions
made on demand for a day that lacks one, retention by partition drop with per-organization overrides,
and the migration going to zero and back."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from django.utils import timezone

from apps.logs import retention, services, storage
from apps.logs.models import LogRetention
from apps.logs.tasks import maintain_storage
from apps.metrics.rollups.storage import existing_partitions
from tests.logs.conftest import post_logs, search

pytestmark = pytest.mark.django_db


def partitions(table: str) -> set[str]:
    with connection.cursor() as cursor:
        return set(existing_partitions(cursor, table))


def day_partition(table: str, days_ago: int) -> str:
    return f"{table}_p{timezone.now().date() - dt.timedelta(days=days_ago):%Y%m%d}"


def store_old(organization_id: int, days_ago: int, message: str) -> None:
    """An entry and an event `days_ago` days old, written below the door (which refuses old times)."""
    when = timezone.now() - dt.timedelta(days=days_ago)
    storage.ensure_range(when - dt.timedelta(hours=1), when + dt.timedelta(hours=1))
    storage._known_days.clear()
    services.ingest_entries(organization_id=organization_id, rows=[
        (when, None, None, "h", "", "info", "", message, "", "", "", "", "", "{}")])
    services.ingest_events(organization_id=organization_id, rows=[
        (when, None, None, "h", "deploy", "info", message, "", "", "{}")])


def count(table: str, organization_id: int) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {table} WHERE organization_id = %s", [organization_id])
        return int(cursor.fetchone()[0])


def test_tables_are_partitioned_by_day_around_today() -> None:
    for spec in storage.TABLES:
        have = partitions(spec.table)
        assert {day_partition(spec.table, d) for d in range(-3, 8)} <= have
        assert f"{spec.table}_default" not in have


def test_a_day_without_a_partition_gets_one_on_write(client: Client, write_token: str, read_token: str) -> None:
    today = day_partition("logs_entry", 0)
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE logs_entry DETACH PARTITION {today}")
        cursor.execute(f"DROP TABLE {today}")
    storage._known_days.clear()
    assert post_logs(client, write_token, [{"message": "after the drop"}]).status_code == 200
    assert today in partitions("logs_entry")
    assert search(client, read_token, q="drop").json()["results"][0]["message"] == "after the drop"


def test_retention_drops_whole_partitions_past_the_longest_retention(org: Any, other_org: Any) -> None:
    other_org.plan = "team"  # the free plan caps logs at 30 days; team allows 45
    other_org.save()
    LogRetention.objects.create(organization=other_org, logs_days=45)
    store_old(org.pk, 50, "fifty")
    store_old(org.pk, 40, "forty")
    store_old(org.pk, 20, "twenty")
    summary = maintain_storage.apply().get()
    assert summary.startswith("logs: dropped ")
    logs, events = partitions("logs_entry"), partitions("logs_event")
    assert day_partition("logs_entry", 50) not in logs and day_partition("logs_entry", 40) in logs
    # events default to 90 days: nothing of these is old enough
    assert day_partition("logs_event", 50) in events
    # org has the default 30 days: its 40-day-old entry is trimmed, the 20-day-old one kept
    assert count("logs_entry", org.pk) == 1
    assert count("logs_event", org.pk) == 3


def test_an_override_hides_and_then_trims_older_rows(org: Any, client: Client, read_token: str) -> None:
    store_old(org.pk, 3, "three days old")
    assert search(client, read_token, start=(timezone.now() - dt.timedelta(days=5)).isoformat()).json()["results"]
    LogRetention.objects.create(organization=org, logs_days=2)
    assert retention.retention_days(org.pk, "logs") == 2
    assert search(client, read_token, start=(timezone.now() - dt.timedelta(days=5)).isoformat()).json()[
        "results"] == []
    retention.apply_retention()
    assert count("logs_entry", org.pk) == 0
    assert count("logs_event", org.pk) == 1  # events keep their own (default) retention


def test_an_override_beyond_the_plan_keeps_only_the_plan(org: Any) -> None:
    LogRetention.objects.create(organization=org, logs_days=365, events_days=20)
    assert retention.retention_days(org.pk, "logs") == 30  # free plan
    assert retention.retention_days(org.pk, "events") == 20
    assert retention.keep_days("logs") == 30


def test_storage_never_drops_what_ingest_may_still_write(settings: Any) -> None:
    settings.FIBERSTACK_LOGS_RETENTION_DAYS = 1
    assert retention.keep_days("logs") == 7  # FIBERSTACK_LOGS_MAX_PAST_S is 7 days


@pytest.mark.django_db(transaction=True)
def test_migration_goes_to_zero_and_back() -> None:
    executor = MigrationExecutor(connection)
    executor.migrate([("logs", None)])
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('logs_entry'), to_regclass('logs_event'), to_regclass('logs_logretention')")
        assert cursor.fetchone() == (None, None, None)
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    assert day_partition("logs_entry", 0) in partitions("logs_entry")
