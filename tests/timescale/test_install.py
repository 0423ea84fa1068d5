"""FiberStack's metrics migrations on a real TimescaleDB: migration 0002 (``apps.metrics.storage.install``
with FIBERSTACK_TIMESCALEDB=on) makes the raw table a hypertable with 1-day chunks, migration 0003 makes
the rollup tables hypertables and declares raw compression; both reverse cleanly."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.core.management import call_command
from django.test import override_settings

from apps.metrics import storage
from tests.timescale.conftest import ALIAS
from tests.timescale.samples import every_minute, fetch, insert_samples, scalar

pytestmark = pytest.mark.xdist_group("timescale")


def test_the_server_is_timescaledb_2(ts: Any) -> None:
    version = scalar(ts, "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")
    assert version is not None and version.startswith("2."), version
    assert int(scalar(ts, "SHOW server_version_num")) >= 150000


def test_raw_samples_are_a_hypertable_with_one_day_chunks_on_time(ts: Any) -> None:
    assert fetch(
        ts,
        "SELECT num_dimensions, compression_enabled FROM timescaledb_information.hypertables "
        "WHERE hypertable_name = %s",
        [storage.TABLE],
    ) == [(1, True)]
    assert fetch(
        ts,
        "SELECT column_name, dimension_type, time_interval FROM timescaledb_information.dimensions "
        "WHERE hypertable_name = %s",
        [storage.TABLE],
    ) == [("time", "Time", dt.timedelta(days=1))]
    assert storage.backend_name(ts) == "timescaledb"
    assert storage.backend_name() == "timescaledb"  # django.db.connection is this server in these tests


def test_raw_samples_have_only_the_series_time_index(ts: Any) -> None:
    """create_default_indexes => false: no (time DESC) index, every read filters by series first."""
    indexes = fetch(ts, "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s", [storage.TABLE])
    assert [name for name, _ in indexes] == [storage.INDEX]
    assert indexes[0][1].endswith("(series_id, \"time\")")  # ascending: migration raw_index_ascending


def test_rollup_tables_are_hypertables_on_bucket(ts: Any) -> None:
    dimensions = dict(
        fetch(
            ts,
            "SELECT hypertable_name, time_interval FROM timescaledb_information.dimensions "
            "WHERE column_name = 'bucket' ORDER BY 1",
        )
    )
    # TimescaleDB turns INTERVAL '1 month' / '1 year' into fixed 30 / 360 days (no calendar chunks):
    # harmless (drop_chunks works on ranges), but the chunks are not calendar months or years.
    assert dimensions == {
        "metrics_rollup_1m": dt.timedelta(days=1),
        "metrics_rollup_5m": dt.timedelta(days=7),
        "metrics_rollup_1h": dt.timedelta(days=30),
        "metrics_rollup_1d": dt.timedelta(days=360),
    }
    keys = fetch(ts, "SELECT indexname FROM pg_indexes WHERE tablename = ANY(%s) ORDER BY 1", [list(dimensions)])
    assert [name for (name,) in keys] == [f"{table}_pkey" for table in sorted(dimensions)]


def test_ensure_partitions_has_nothing_to_do(ts: Any) -> None:
    assert storage.ensure_partitions(days_ahead=3) == {"created": 0, "moved": 0}
    assert scalar(ts, "SELECT count(*) FROM show_chunks(%s)", [storage.TABLE]) == 0


def test_inserted_samples_make_one_chunk_per_utc_day(ts: Any) -> None:
    start = dt.datetime(2026, 3, 1, 22, 0, tzinfo=dt.UTC)
    insert_samples(ts, every_minute(start, start + dt.timedelta(hours=28), [1, 2]))  # 1 Mar 22:00 .. 3 Mar 02:00
    chunks = fetch(
        ts,
        "SELECT range_start, range_end FROM timescaledb_information.chunks WHERE hypertable_name = %s ORDER BY 1",
        [storage.TABLE],
    )
    assert chunks == [
        (dt.datetime(2026, 3, day, tzinfo=dt.UTC), dt.datetime(2026, 3, day + 1, tzinfo=dt.UTC)) for day in (1, 2, 3)
    ]
    assert scalar(ts, f"SELECT count(*) FROM {storage.TABLE}") == 28 * 60 * 2


def test_reading_back_by_series_and_time_bucket(ts: Any) -> None:
    start = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    insert_samples(ts, every_minute(start, start + dt.timedelta(hours=2), [7, 8], lambda t, sid: t.minute + sid))
    rows = fetch(
        ts,
        f"SELECT time_bucket(INTERVAL '1 hour', time) AS b, max(value), count(*) FROM {storage.TABLE} "
        "WHERE series_id = %s AND time >= %s AND time < %s GROUP BY b ORDER BY b",
        [7, start, start + dt.timedelta(hours=2)],
    )
    assert rows == [(start, 66.0, 60), (start + dt.timedelta(hours=1), 66.0, 60)]


def test_metrics_migrations_reverse_and_reapply(ts: Any) -> None:
    """Migrations 0003 and 0002 backwards (decompress, drop tables), then forwards again."""
    start = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    insert_samples(ts, every_minute(start, start + dt.timedelta(hours=1), [1]))
    try:
        with override_settings(FIBERSTACK_TIMESCALEDB="on"):
            call_command("migrate", "metrics", "0001", database=ALIAS, interactive=False, verbosity=0)
            assert scalar(ts, "SELECT to_regclass(%s)", [storage.TABLE]) is None
            assert scalar(ts, "SELECT count(*) FROM timescaledb_information.hypertables") == 0
    finally:
        with override_settings(FIBERSTACK_TIMESCALEDB="on"):
            call_command("migrate", "metrics", database=ALIAS, interactive=False, verbosity=0)
    assert scalar(ts, "SELECT count(*) FROM timescaledb_information.hypertables") == 5
    assert storage.backend_name(ts) == "timescaledb"
