"""Raw sample storage: the chosen backend, daily partitions ahead, the DEFAULT safety net and
ensure_partitions, the binary COPY format, one sample per (series, time) on every partition (later write
wins, also against a concurrent uncommitted original), and the migrations going to zero and back."""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any

import numpy as np
import pytest
from django.db import connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st

from apps.metrics import storage
from apps.metrics.storage import partitioned
from apps.metrics.storage.common import copy_samples_write_row, sorted_columns, stable_order
from tests.metrics.factories import SeriesFactory, samples_of
from tests.metrics.migration_helpers import migration_and_parent

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


def unique_by_partition() -> dict[str, bool]:
    """Partition name -> whether its (series_id, time) index is unique."""
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT c.relname, i.indisunique FROM pg_inherits h
            JOIN pg_class c ON c.oid = h.inhrelid JOIN pg_index i ON i.indrelid = h.inhrelid
            WHERE h.inhparent = %s::regclass""",
            [storage.TABLE],
        )
        return dict(cursor.fetchall())


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


def test_copy_buffer_is_faster_than_write_row(capsys: Any) -> None:
    """The measurement behind common.binary_copy_buffer: printed with -s."""
    n = 50_000
    now = us(timezone.now())
    times = [now + i for i in range(n)]
    values = [float(i) for i in range(n)]
    wall: dict[str, float] = {}
    cpu: dict[str, float] = {}
    with connection.cursor() as cursor:
        for name, fn in (("buffer", storage.copy_samples), ("write_row", copy_samples_write_row)):
            series = SeriesFactory()  # one each: the same rows twice would be one sample
            start, start_cpu = time.perf_counter(), time.process_time()
            fn(cursor, times, [series.id] * n, values)
            wall[name], cpu[name] = time.perf_counter() - start, time.process_time() - start_cpu
            cursor.execute("SELECT count(*) FROM metrics_sample WHERE series_id = %s", [series.id])
            assert cursor.fetchone()[0] == n
    with capsys.disabled():
        print(f"\nCOPY {n} rows: numpy buffer {n / wall['buffer']:,.0f} rows/s wall, "
              f"{n / cpu['buffer']:,.0f} rows per client CPU-s; write_row {n / wall['write_row']:,.0f} rows/s wall, "
              f"{n / cpu['write_row']:,.0f} rows per client CPU-s")
    # Wall time is dominated by the server (and noisy on a shared machine); the client's CPU is what the
    # choice changes, and it is the web worker's CPU that ingest throughput is bound by.
    assert cpu["buffer"] < cpu["write_row"]


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


def test_every_partition_has_the_unique_key_also_those_created_and_moved_later() -> None:
    series = SeriesFactory()
    stray = timezone.now() - dt.timedelta(days=5)  # lands in DEFAULT, then gets a partition of its own
    with connection.cursor() as cursor:
        storage.copy_samples(cursor, [us(stray)], [series.id], [1.0])
    storage.ensure_partitions(days_ahead=6)
    found = unique_by_partition()
    assert {partitioned.partition_name(stray.date()), partitioned.partition_name(timezone.now().date() +
            dt.timedelta(days=6)), partitioned.DEFAULT_PARTITION} <= set(found)
    assert all(found.values()), found


def test_a_repeat_in_the_request_or_stored_is_one_sample_and_the_later_write_wins() -> None:
    series, other = SeriesFactory(), SeriesFactory()
    t = us(timezone.now().replace(microsecond=0))
    latest: dict[int, tuple[int, float]] = {}
    with connection.cursor() as cursor:
        assert storage.copy_samples(cursor, [t, t + 1, t], [series.id] * 3, [1.0, 5.0, 2.0], latest=latest) == 3
        assert latest == {series.id: (t + 1, 5.0)}
        # Stored keys, a new one and an untouched series: the upsert path, then the plain COPY path again.
        assert storage.copy_samples(cursor, [t, t + 2, t], [series.id] * 3, [3.0, 6.0, 4.0], latest=latest) == 3
        assert latest == {series.id: (t + 2, 6.0)}
        assert storage.copy_samples(cursor, [t], [other.id], [9.0]) == 1
    base = t / 1_000_000
    assert samples_of(series) == [(base, 4.0), (base + 1e-6, 5.0), (base + 2e-6, 6.0)]
    assert samples_of(other) == [(base, 9.0)]


@pytest.mark.django_db(transaction=True)
def test_a_retry_racing_its_uncommitted_original_waits_for_it_and_wins() -> None:
    """The first reply is lost while its transaction is still committing: the retry's COPY waits on the
    uncommitted key, meets it once committed, and upserts over it."""
    series = SeriesFactory()
    t = [us(timezone.now().replace(microsecond=0))]
    copied, release = threading.Event(), threading.Event()

    def original() -> None:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                storage.copy_samples(cursor, t, [series.id], [1.0])
                copied.set()
                release.wait(10)
        finally:
            connection.close()

    thread = threading.Thread(target=original)
    thread.start()
    assert copied.wait(10)
    timer = threading.Timer(0.5, release.set)
    timer.start()
    started = time.monotonic()
    with transaction.atomic(), connection.cursor() as cursor:
        storage.copy_samples(cursor, t, [series.id], [2.0])
    waited = time.monotonic() - started
    thread.join(10)
    timer.join()
    assert waited >= 0.4
    assert samples_of(series) == [(t[0] / 1_000_000, 2.0)]


@pytest.mark.django_db(transaction=True)
def test_migration_0004_removes_duplicates_keeping_the_last_stored_and_reverses() -> None:
    mine, before = migration_and_parent("metrics", "_sample_unique_series_time")
    series = SeriesFactory()
    now, stray = timezone.now().replace(microsecond=0), timezone.now().replace(microsecond=0) - dt.timedelta(days=5)
    try:
        MigrationExecutor(connection).migrate([("metrics", before)])
        assert not any(unique_by_partition().values())
        with connection.cursor() as cursor:  # stored three times (in a daily partition), twice (in DEFAULT)
            storage.copy_samples(cursor, [us(now)] * 3 + [us(stray)] * 2, [series.id] * 5, [1.0, 2.0, 3.0, 7.0, 8.0])
        assert len(samples_of(series)) == 5

        MigrationExecutor(connection).migrate([("metrics", mine)])
        assert all(unique_by_partition().values())
        assert samples_of(series) == [(stray.timestamp(), 8.0), (now.timestamp(), 3.0)]

        MigrationExecutor(connection).migrate([("metrics", before)])
        assert not any(unique_by_partition().values())
        with connection.cursor() as cursor:
            storage.copy_samples(cursor, [us(now)], [series.id], [4.0])
        assert len(samples_of(series)) == 3
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
    assert all(unique_by_partition().values())
    assert samples_of(series) == [(stray.timestamp(), 8.0), (now.timestamp(), 4.0)]


@settings(max_examples=200, deadline=None)
@given(ids=st.lists(st.integers(1, 2**31 - 1), max_size=300), narrow=st.booleans())
def test_rows_are_ordered_by_series_keeping_the_request_order_among_equal_ids(ids: list[int], narrow: bool) -> None:
    if narrow:  # the radix path: ids within 65,536 of each other, repeated as a scrape repeats them
        ids = [1_000_000 + i % 70_000 for i in ids] + [1_000_000 + i % 97 for i in ids]
    array = np.asarray(ids, dtype=np.int32)
    assert stable_order(array).tolist() == sorted(range(len(ids)), key=ids.__getitem__)
    # In time order: each series' rows keep the body's order, so the later of two equal times stays last.
    times = sorted(i % 7 for i in range(len(ids)))
    rows = sorted_columns(times, ids, [float(i) for i in range(len(ids))])
    expected = sorted(range(len(ids)), key=ids.__getitem__)
    assert rows.values.tolist() == [float(i) for i in expected]
    assert rows.series_ids.tolist() == [ids[i] for i in expected]
