"""Retention on a real TimescaleDB: ``apps.metrics.retention`` drops whole chunks (``drop_chunks``) of the
raw table and of every rollup tier, only those entirely before the cutoff; TimescaleDB's own retention
policy runs through ``CALL run_job``."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from apps.metrics import storage
from tests.timescale.samples import every_minute, fetch, insert_samples, scalar

pytestmark = pytest.mark.xdist_group("timescale")


def _chunk_days(connection: Any, table: str) -> list[dt.date]:
    rows = fetch(
        connection,
        "SELECT range_start FROM timescaledb_information.chunks WHERE hypertable_name = %s ORDER BY 1",
        [table],
    )
    return [start.date() for (start,) in rows]


def test_drop_expired_drops_only_raw_chunks_entirely_before_the_cutoff(ts: Any) -> None:
    retention = pytest.importorskip("apps.metrics.retention")
    insert_samples(ts, every_minute(dt.datetime(2026, 3, 1, tzinfo=dt.UTC), dt.datetime(2026, 3, 5, tzinfo=dt.UTC),
                                    [1, 2]))
    cutoff = dt.datetime(2026, 3, 3, 6, 0, tzinfo=dt.UTC)  # inside the 3 March chunk: that one stays

    dropped = retention.drop_expired("raw", cutoff)

    assert len(dropped) == 2
    assert _chunk_days(ts, storage.TABLE) == [dt.date(2026, 3, 3), dt.date(2026, 3, 4)]
    assert scalar(ts, f"SELECT min(time) FROM {storage.TABLE}") == dt.datetime(2026, 3, 3, tzinfo=dt.UTC)
    assert retention.drop_expired("raw", cutoff) == []


def test_drop_expired_works_on_compressed_chunks(ts: Any) -> None:
    retention = pytest.importorskip("apps.metrics.retention")
    start = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    insert_samples(ts, every_minute(start, start + dt.timedelta(days=2), [1]))
    assert retention.compress_raw_chunks(now=dt.datetime(2026, 3, 10, tzinfo=dt.UTC)) == 2

    assert len(retention.drop_expired("raw", dt.datetime(2026, 3, 2, tzinfo=dt.UTC))) == 1
    assert _chunk_days(ts, storage.TABLE) == [dt.date(2026, 3, 2)]


def test_apply_retention_keeps_each_tier_for_its_default_days(ts: Any) -> None:
    """Raw 7 days, 1m 30 days (no organization overrides them here): older chunks go, newer stay."""
    retention = pytest.importorskip("apps.metrics.retention")
    now = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
    insert_samples(ts, [(now - dt.timedelta(days=days), 1, 1.0) for days in (1, 6, 8, 20)])
    with ts.cursor() as cursor:
        for days in (1, 29, 31, 80):
            cursor.execute(
                "INSERT INTO metrics_rollup_1m VALUES (%s, 1, 1, 1, 1, 1, 1, '{1}', '{1}')",
                [now - dt.timedelta(days=days)],
            )

    report = retention.apply_retention(now=now)

    assert report["raw"]["keep_days"] == 7 and len(report["raw"]["dropped"]) == 2
    assert report["1m"]["keep_days"] == 30 and len(report["1m"]["dropped"]) == 2
    assert report["partitions_created"] == 0  # TimescaleDB makes chunks on insert
    assert scalar(ts, f"SELECT count(*) FROM {storage.TABLE}") == 2
    assert scalar(ts, "SELECT count(*) FROM metrics_rollup_1m") == 2


def test_retention_policy_runs_with_run_job(ts: Any) -> None:
    today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    insert_samples(ts, [(today - dt.timedelta(days=days), 1, 1.0) for days in (0, 3, 10, 11)])
    job = scalar(ts, "SELECT add_retention_policy(%s, drop_after => INTERVAL '7 days')", [storage.TABLE])
    assert len(_chunk_days(ts, storage.TABLE)) == 4

    with ts.cursor() as cursor:
        cursor.execute("CALL run_job(%s)", [job])

    assert _chunk_days(ts, storage.TABLE) == [(today - dt.timedelta(days=3)).date(), today.date()]
