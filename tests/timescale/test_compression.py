"""Raw-chunk compression on a real TimescaleDB: the settings migration 0003 declares (segmented by series,
ordered by time), the explicit ``retention.compress_raw_chunks`` job, and TimescaleDB's own policy run
with ``CALL run_job`` (the WASM build has no background workers to run it on schedule)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from apps.metrics import storage
from tests.timescale.samples import every_minute, fetch, insert_samples, scalar

pytestmark = pytest.mark.xdist_group("timescale")

NOW = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)
PER_SERIES = f"""
    SELECT series_id, count(*), sum(value), min(value), max(value) FROM {storage.TABLE}
    GROUP BY series_id ORDER BY series_id
"""


def _chunks(connection: Any) -> list[tuple[dt.datetime, bool]]:
    return fetch(
        connection,
        "SELECT range_start, is_compressed FROM timescaledb_information.chunks WHERE hypertable_name = %s ORDER BY 1",
        [storage.TABLE],
    )


def test_raw_compression_is_segmented_by_series_and_ordered_by_time(ts: Any) -> None:
    settings = fetch(
        ts,
        "SELECT attname, segmentby_column_index, orderby_column_index, orderby_asc "
        "FROM timescaledb_information.compression_settings WHERE hypertable_name = %s ORDER BY attname",
        [storage.TABLE],
    )
    assert settings == [("series_id", 1, None, None), ("time", None, 1, False)]


def test_compress_raw_chunks_compresses_chunks_older_than_three_days_and_keeps_every_value(ts: Any) -> None:
    retention = pytest.importorskip("apps.metrics.retention")
    insert_samples(ts, every_minute(dt.datetime(2026, 3, 4, tzinfo=dt.UTC), NOW, [1, 2, 3]))
    before = fetch(ts, PER_SERIES)

    assert retention.compress_raw_chunks(now=NOW) == 3  # chunks of 4, 5 and 6 March end before 7 March 12:00
    assert [c for c in _chunks(ts) if c[1]] == [(dt.datetime(2026, 3, day, tzinfo=dt.UTC), True) for day in (4, 5, 6)]
    assert fetch(ts, PER_SERIES) == before
    stats = fetch(
        ts,
        "SELECT sum(before_compression_total_bytes), sum(after_compression_total_bytes) "
        "FROM chunk_compression_stats(%s)",
        [storage.TABLE],
    )[0]
    assert stats[1] < stats[0]
    # A second run is harmless (if_not_compressed) and leaves the same chunks compressed.
    retention.compress_raw_chunks(now=NOW)
    assert sum(1 for c in _chunks(ts) if c[1]) == 3
    assert fetch(ts, PER_SERIES) == before


def test_late_samples_go_into_a_compressed_chunk_and_are_read_back(ts: Any) -> None:
    retention = pytest.importorskip("apps.metrics.retention")
    day = dt.datetime(2026, 3, 4, tzinfo=dt.UTC)
    insert_samples(ts, every_minute(day, day + dt.timedelta(days=1), [1]))
    retention.compress_raw_chunks(now=NOW)
    late = dt.datetime(2026, 3, 4, 12, 0, 30, tzinfo=dt.UTC)
    insert_samples(ts, [(late, 1, 12345.0)])
    assert fetch(ts, f"SELECT value FROM {storage.TABLE} WHERE series_id = 1 AND time = %s", [late]) == [
        (12345.0,)
    ]
    assert scalar(ts, f"SELECT count(*) FROM {storage.TABLE}") == 24 * 60 + 1


def test_compression_policy_runs_with_run_job(ts: Any) -> None:
    """TimescaleDB's own policy, as a deployment with background workers would schedule it: here the
    job exists but only ``CALL run_job`` runs it."""
    today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    insert_samples(ts, every_minute(today - dt.timedelta(days=6), today - dt.timedelta(days=5), [1]))
    insert_samples(ts, every_minute(today, today + dt.timedelta(hours=1), [1]))
    job = scalar(ts, "SELECT add_compression_policy(%s, compress_after => INTERVAL '3 days')", [storage.TABLE])
    assert scalar(ts, "SELECT count(*) FROM timescaledb_information.jobs WHERE job_id = %s", [job]) == 1
    assert not any(compressed for _, compressed in _chunks(ts))

    with ts.cursor() as cursor:
        cursor.execute("CALL run_job(%s)", [job])

    assert _chunks(ts) == [(today - dt.timedelta(days=6), True), (today, False)]
