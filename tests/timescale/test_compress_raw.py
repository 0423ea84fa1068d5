"""``manage.py compress_raw`` on TimescaleDB: the same entry point and options as on plain PostgreSQL,
native compression underneath (segment by series, order by time), and what it costs per value on
TSBS-like data, read back exactly."""

from __future__ import annotations

import datetime as dt
import io
import os
from typing import Any

import pytest
from django.core.management import call_command

from apps.metrics import compression, storage
from tests.timescale.samples import every_minute, fetch, insert_samples, scalar, tsbs_walk

pytestmark = pytest.mark.xdist_group("timescale")

DAY = dt.timedelta(days=1)
# TSBS cpu-only: ten fields per host every 10 s; hosts kept small for the WASM build (env to measure more).
TSBS_HOSTS = int(os.environ.get("FIBERSTACK_TS_BENCH_HOSTS", "10"))
INSERT_BATCH = 50_000
# Every value exactly: float8 text output is shortest-exact since PostgreSQL 12.
CHECKSUM = f"SELECT count(*), md5(string_agg(series_id || '@' || time || '=' || value, ',' ORDER BY series_id, time)) FROM {storage.TABLE}"  # noqa: E501


def _compressed(connection: Any) -> list[tuple[dt.datetime, bool]]:
    return fetch(connection, "SELECT range_start, is_compressed FROM timescaledb_information.chunks "
                 "WHERE hypertable_name = %s ORDER BY 1", [storage.TABLE])


def test_compress_raw_command_compresses_chunks_older_than_the_option_oldest_first_up_to_the_limit(ts: Any) -> None:
    today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    insert_samples(ts, every_minute(today - 5 * DAY, today - 5 * DAY + dt.timedelta(hours=2), [1, 2]))
    insert_samples(ts, every_minute(today - 4 * DAY, today - 4 * DAY + dt.timedelta(hours=2), [1, 2]))
    insert_samples(ts, every_minute(today - 1 * DAY, today - 1 * DAY + dt.timedelta(hours=2), [1, 2]))
    insert_samples(ts, every_minute(today, today + dt.timedelta(minutes=30), [1, 2]))
    before = fetch(ts, CHECKSUM)

    out = io.StringIO()
    call_command("compress_raw", "--older-than", "2d", "--limit", "1", stdout=out)
    assert out.getvalue().startswith("compressed 1 raw chunks, 240 values")
    assert [c for c, done in _compressed(ts) if done] == [today - 5 * DAY]

    out = io.StringIO()
    call_command("compress_raw", "--older-than", "2d", stdout=out)  # the next due one; yesterday is too young
    assert out.getvalue().startswith("compressed 1 raw chunks, 240 values")
    assert _compressed(ts) == [(today - 5 * DAY, True), (today - 4 * DAY, True), (today - DAY, False),
                               (today, False)]
    assert fetch(ts, CHECKSUM) == before

    out = io.StringIO()
    call_command("compress_raw", "--older-than", "2d", stdout=out)
    assert out.getvalue().startswith("compressed 0 raw chunks, 0 values")


def test_tsbs_day_compresses_natively_reads_back_exactly_and_reports_bytes_per_value(ts: Any) -> None:
    day = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    series = list(range(1, TSBS_HOSTS * 10 + 1))
    rows = tsbs_walk(day, 8640, dt.timedelta(seconds=10), series)  # one day at 10 s
    for start in range(0, len(rows), INSERT_BATCH):
        insert_samples(ts, rows[start:start + INSERT_BATCH])
    rows_bytes = scalar(ts, "SELECT hypertable_size(%s)", [storage.TABLE])
    before = fetch(ts, CHECKSUM)
    assert before[0][0] == len(rows)

    report = compression.compress_raw(now=day + 2 * DAY, older_than=DAY)

    assert list(report.days) == [day.date()]
    stats = report.days[day.date()]
    assert stats["rows"] == len(rows)
    assert fetch(ts, CHECKSUM) == before
    one = fetch(ts, f"SELECT time, value FROM {storage.TABLE} WHERE series_id = %s ORDER BY time", [7])
    assert one == [(moment, value) for moment, sid, value in rows if sid == 7]
    after = scalar(ts, "SELECT after_compression_total_bytes FROM chunk_compression_stats(%s)", [storage.TABLE])
    assert after == stats["bytes_after"]
    per_value = after / len(rows)
    print(f"\nTimescaleDB 2.23 (PGlite) TSBS cpu-only {TSBS_HOSTS} hosts x 1 day at 10 s: {len(rows):,} values; "
          f"rows {rows_bytes:,} B ({rows_bytes / len(rows):.1f} B/value); compressed {after:,} B "
          f"({per_value:.3f} B/value) in {report.seconds:.1f} s")
    assert per_value < 4.0  # issue 12's target for raw storage
