"""Retention: whole partitions dropped at the longest retention any organization needs, shorter
organizations trimmed (rollups) and hidden at query time, rollup partitions created ahead."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from apps.metrics import retention, storage
from apps.metrics.rollup_tasks import apply_retention, compress_chunks
from apps.metrics.rollups import storage as rollup_storage
from apps.metrics.rollups.tiers import BY_NAME
from tests.metrics.factories import SeriesFactory
from tests.metrics.rollup_helpers import write

pytestmark = pytest.mark.django_db

TODAY = timezone.now().date()


def partitions(table: str) -> set[str]:
    with connection.cursor() as cursor:
        return set(rollup_storage.existing_partitions(cursor, table))


def raw_partition(days_ago: int) -> str:
    from apps.metrics.storage.partitioned import partition_name

    return partition_name(TODAY - dt.timedelta(days=days_ago))


def make_old_raw(series_id: int, days_ago: list[int]) -> None:
    for days in days_ago:
        day = TODAY - dt.timedelta(days=days)
        storage.ensure_partitions(days_ahead=0, today=day)
        write(series_id, [(dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC), float(days))])


def count_raw(series_id: int) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM metrics_sample WHERE series_id = %s", [series_id])
        return cursor.fetchone()[0]


def test_effective_retention_is_capped_by_the_plan(org: Any) -> None:
    assert retention.retention_days(org, "raw") == 7
    org.retention_raw_days = 90
    assert retention.retention_days(org, "raw") == 7  # free plan ceiling
    org.plan = "enterprise"
    assert retention.retention_days(org, "raw") == 30
    org.retention_1h_days = 10
    assert retention.retention_days(org, "1h") == 10
    assert retention.retention_days(org, "1d") == 730


def test_drops_only_raw_partitions_entirely_older_than_the_cutoff(org: Any) -> None:
    series = SeriesFactory(organization=org)
    make_old_raw(series.id, [10, 8, 6])
    before = partitions(storage.TABLE)
    assert {raw_partition(10), raw_partition(8), raw_partition(6)} <= before
    summary = apply_retention.apply().get()
    after = partitions(storage.TABLE)
    # Cutoff is now - 7 days: the day 8 days ago ended before it, the day 7 days ago did not.
    assert raw_partition(10) not in after and raw_partition(8) not in after and raw_partition(9) not in after
    assert raw_partition(6) in after and raw_partition(7) in after
    assert "metrics_sample_default" in after
    assert count_raw(series.id) == 1
    assert summary.startswith("raw: keep 7d, dropped ")


def test_the_longest_organization_retention_keeps_shared_partitions(org: Any, other_org: Any) -> None:
    other_org.plan = "enterprise"
    other_org.retention_raw_days = 12
    other_org.save()
    series = SeriesFactory(organization=org)
    make_old_raw(series.id, [14, 10])
    retention.apply_retention()
    after = partitions(storage.TABLE)
    assert raw_partition(14) not in after and raw_partition(10) in after
    assert count_raw(series.id) == 1  # org's own 7 days are enforced at query time, see test_query_tiers


def test_rollup_partitions_dropped_and_shorter_organizations_trimmed(org: Any, other_org: Any) -> None:
    org.retention_1m_days = 2
    org.save()
    mine = SeriesFactory(organization=org)
    theirs = SeriesFactory(organization=other_org)
    tier = BY_NAME["1m"]
    now = timezone.now()
    old = now - dt.timedelta(days=40)
    rollup_storage.ensure_range(tier, old, old + dt.timedelta(hours=1))
    with connection.cursor() as cursor:
        for sid in (mine.id, theirs.id):
            for when in (old, now - dt.timedelta(days=5), now - dt.timedelta(hours=1)):
                rollup_storage.ensure_range(tier, when, when + dt.timedelta(minutes=1))
                cursor.execute(f"INSERT INTO {tier.table} VALUES (%s, %s, 1, 1, 1, 1, 1, '{{40001}}', '{{1}}')",
                               [tier.floor(when), sid])
    report = retention.apply_retention(now=now)
    assert f"{tier.table}_p{old.date():%Y%m%d}" in report["1m"]["dropped"]
    assert report["1m"]["deleted_rows"] == 1
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT series_id, count(*) FROM {tier.table} GROUP BY 1")
        assert dict(cursor.fetchall()) == {mine.id: 1, theirs.id: 2}


def test_rollup_partitions_are_created_ahead(org: Any) -> None:
    report = retention.apply_retention()
    assert report["partitions_created"] >= 0
    ahead = TODAY + dt.timedelta(days=3)
    assert f"metrics_rollup_1m_p{ahead:%Y%m%d}" in partitions("metrics_rollup_1m")
    monday = ahead - dt.timedelta(days=ahead.weekday())
    assert f"metrics_rollup_5m_p{monday:%Y%m%d}" in partitions("metrics_rollup_5m")
    assert f"metrics_rollup_1d_p{ahead:%Y}0101" in partitions("metrics_rollup_1d")


def test_compression_on_plain_postgresql_compresses_only_due_partitions(org: Any) -> None:
    # Today's partitions are not closed yet, so nothing is due (tests/metrics/test_compression.py compresses).
    assert compress_chunks.apply().get().startswith("compressed 0 raw partitions, 0 values")
