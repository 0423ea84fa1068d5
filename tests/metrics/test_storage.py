"""Raw sample storage: the chosen backend, daily partitions ahead, the DEFAULT safety net and
ensure_partitions, the binary COPY format, and the migration going to zero and back."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from apps.metrics import storage
from apps.metrics.storage import partitioned
from apps.metrics.storage.common import copy_samples_write_row
from tests.metrics.factories import SeriesFactory

pytestmark = pytest.mark.django_db


def partition_days() -> set[dt.date]:
    with connection.cursor() as cursor:
        return partitioned.existing_days(cursor)


def default_rows() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM metrics_sample_default")
        return cursor.fetchone()[0]


def us(moment: dt.datetime) -> int:
    return int(moment.timestamp() * 1_000_000)


def test_backend_is_partitioned_without_timescaledb() -> None:
    # This machine's PostgreSQL has no TimescaleDB, so "auto" fell back to native partitioning.
    assert storage.backend_name() == "partitioned"


def test_partitions_exist_ahead() -> None:
    storage.ensure_partitions()
    today = timezone.now().date()
    assert {today + dt.timedelta(days=d) for d in range(-1, 4)} <= partition_days()


def test_ensure_partitions_is_idempotent_and_creates_days_ahead() -> None:
    today = timezone.now().date()
    storage.ensure_partitions(days_ahead=6)
    again = storage.ensure_partitions(days_ahead=6)
    assert again == {"created": 0, "moved": 0}
    assert today + dt.timedelta(days=6) in partition_days()


def test_write_into_a_missing_day_lands_in_default_and_is_moved_out() -> None:
    series = SeriesFactory()
    old_day = timezone.now() - dt.timedelta(days=5)  # no partition that far back
    assert old_day.date() not in partition_days()
    with connection.cursor() as cursor:
        storage.copy_samples(cursor, [us(old_day), us(old_day) + 1], [series.id, series.id], [1.0, 2.0])
    assert default_rows() == 2
    result = storage.ensure_partitions()
    assert result["moved"] == 2
    assert default_rows() == 0
    assert old_day.date() in partition_days()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {partitioned.partition_name(old_day.date())}")
        assert cursor.fetchone()[0] == 2
        cursor.execute("SELECT count(*) FROM metrics_sample WHERE series_id = %s", [series.id])
        assert cursor.fetchone()[0] == 2
    # The moved partition has the read index like every other.
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_indexes WHERE tablename = %s",
                       [partitioned.partition_name(old_day.date())])
        assert cursor.fetchone()[0] == 1


def test_binary_copy_round_trips_exact_values() -> None:
    series = SeriesFactory()
    moments = [dt.datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC), timezone.now()]
    values = [-1.5e308, 5e-324]
    with connection.cursor() as cursor:
        storage.copy_samples(cursor, [us(m) for m in moments], [series.id] * 2, values)
        cursor.execute("SELECT time, value FROM metrics_sample WHERE series_id = %s ORDER BY time", [series.id])
        rows = cursor.fetchall()
    assert [r[1] for r in rows] == values
    assert [us(r[0]) for r in rows] == [us(m) for m in moments]


def test_struct_buffer_is_faster_than_write_row(capsys: Any) -> None:
    """The measurement behind common.binary_copy_buffer: printed with -s."""
    series = SeriesFactory()
    n = 50_000
    now = us(timezone.now())
    times = [now + i for i in range(n)]
    ids = [series.id] * n
    values = [float(i) for i in range(n)]
    wall: dict[str, float] = {}
    cpu: dict[str, float] = {}
    with connection.cursor() as cursor:
        for name, fn in (("struct", storage.copy_samples), ("write_row", copy_samples_write_row)):
            start, start_cpu = time.perf_counter(), time.process_time()
            fn(cursor, times, ids, values)
            wall[name], cpu[name] = time.perf_counter() - start, time.process_time() - start_cpu
        cursor.execute("SELECT count(*) FROM metrics_sample WHERE series_id = %s", [series.id])
        assert cursor.fetchone()[0] == 2 * n
    with capsys.disabled():
        print(f"\nCOPY {n} rows: struct buffer {n / wall['struct']:,.0f} rows/s wall, "
              f"{n / cpu['struct']:,.0f} rows per client CPU-s; write_row {n / wall['write_row']:,.0f} rows/s wall, "
              f"{n / cpu['write_row']:,.0f} rows per client CPU-s")
    # Wall time is dominated by the server (and noisy on a shared machine); the client's CPU is what the
    # choice changes, and it is the web worker's CPU that ingest throughput is bound by.
    assert cpu["struct"] < cpu["write_row"]


@pytest.mark.django_db(transaction=True)
def test_migration_goes_to_zero_and_back() -> None:
    executor = MigrationExecutor(connection)
    executor.migrate([("metrics", None)])
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('metrics_sample'), to_regclass('metrics_series')")
        assert cursor.fetchone() == (None, None)
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    storage.backend_name.__globals__["_detected"].clear()
    assert storage.backend_name() == "partitioned"
    assert {timezone.now().date() + dt.timedelta(days=d) for d in range(-1, 4)} <= partition_days()
