"""Compressed raw partitions on plain PostgreSQL: the codec and the rewrite are lossless to the bit, reads
(raw API, steps, percentiles, rollups) answer compressed days exactly as row days, late samples into a
compressed day win and are merged by the next compression, compression waits for final rollups, and
retention deletes chunks past the raw cutoff."""

from __future__ import annotations

import datetime as dt
import math
import struct
import time
from typing import Any

import numpy as np
import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.metrics import compression, retention, storage
from apps.metrics.rollup_tasks import compress_chunks
from apps.metrics.rollups import jobs
from apps.metrics.rollups import storage as rollup_storage
from apps.metrics.rollups.models import RollupInvalidation, RollupState
from apps.metrics.rollups.tiers import TIERS
from apps.metrics.storage import codec, compressed, ddl
from apps.metrics.storage.partitioned import existing_days
from tests.core.test_database_roles import app_role, granted  # noqa: F401 - fixtures
from tests.metrics.factories import SeriesFactory
from tests.metrics.rollup_helpers import rows

pytestmark = pytest.mark.django_db

TODAY = timezone.now().date()
DAY = TODAY - dt.timedelta(days=3)
DAY_LO = dt.datetime.combine(DAY, dt.time(), tzinfo=dt.UTC)
DAY_US = int(DAY_LO.timestamp()) * 1_000_000
US_PER_DAY = 86_400_000_000
# Values the doors accept, at the edges of float64: signed zeros, subnormals, +-DBL_MAX, the smallest normal.
EDGES = [0.0, -0.0, 5e-324, -5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, -1.7976931348623157e308,
         0.1, 1 / 3, 58.0, -1e-300]


def bits(values: Any) -> list[int]:
    return [struct.unpack("<q", struct.pack("<d", v))[0] for v in values]


def write(series_id: int, times_us: list[int], values: list[float]) -> None:
    with connection.cursor() as cursor:
        storage.copy_samples(cursor, times_us, [series_id] * len(values), values)


def make_day(day: dt.date) -> None:
    storage.ensure_partitions(days_ahead=0, today=day + dt.timedelta(days=1))


def stored(series_ids: list[int], lo_us: int, hi_us: int) -> dict[tuple[int, int], int]:
    """(series, unix µs) -> value bits of everything the read side sees (rows and chunks)."""
    lo, hi = compressed._ts(lo_us), compressed._ts(hi_us)
    with connection.cursor() as cursor:
        params = compressed.read_params(cursor, lo, hi, series_ids)
        sql = (f"SELECT series_id, (extract(epoch FROM time) * 1000000)::bigint, float8send(value) "
               f"FROM {compressed.RAW_SOURCE} AS raw WHERE series_id = ANY(%(ids)s) "
               "AND time >= %(lo)s AND time <= %(hi)s")
        cursor.execute(sql, {"ids": series_ids, "lo": lo, "hi": hi, **params})
        found = cursor.fetchall()
    out = {(sid, t): struct.unpack(">q", bytes(b))[0] for sid, t, b in found}
    assert len(out) == len(found), "a (series, time) read twice"
    return out


def chunk_days(series_id: int) -> list[dt.date]:
    """Days with chunks of this series (other tests' committed chunks may share the table)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT DISTINCT (first_time AT TIME ZONE 'UTC')::date FROM metrics_sample_compressed "
                       "WHERE series_id = %s ORDER BY 1", [series_id])
        return [row[0] for row in cursor.fetchall()]


def finalise_rollups(until: dt.datetime) -> None:
    for tier in TIERS:
        RollupState.objects.update_or_create(tier=tier.name, defaults={"watermark": until, "dirty_from": None,
                                                                       "dirty_to": None})


# -- codec ---------------------------------------------------------------------------------------------------

float_bits = st.integers(min_value=-(2**63), max_value=2**63 - 1)


@settings(max_examples=300, deadline=None)
@given(st.lists(float_bits, max_size=400), st.lists(st.integers(0, 10**12), max_size=400, unique=True))
def test_codec_round_trips_every_float64_bit_pattern_and_timestamp(value_bits: list[int], offsets: list[int]) -> None:
    """Any 64-bit pattern: NaN payloads (quiet and signalling), infinities, -0.0, subnormals."""
    values = np.array(value_bits, dtype=np.int64).view(np.float64)
    times = DAY_US + np.array(sorted(offsets), dtype=np.int64)
    assert codec.decode_values(codec.encode_values(values)).view(np.int64).tolist() == value_bits
    assert codec.decode_times(codec.encode_times(times)).tolist() == times.tolist()


def test_codec_keeps_nan_payloads_and_signed_zeros() -> None:
    payloads = [0x7FF8000000000001, 0x7FF0000000000001, -0x0008000000000001, 0x7FF8DEADBEEF0000,
                -(2**63)]  # quiet/signalling NaN payloads, a negative NaN, -0.0
    values = np.array(payloads, dtype=np.int64).view(np.float64)
    assert math.isnan(values[0]) and math.copysign(1.0, values[-1]) == -1.0
    assert codec.decode_values(codec.encode_values(values)).view(np.int64).tolist() == payloads


# -- the rewrite ---------------------------------------------------------------------------------------------

samples = st.lists(
    st.tuples(st.integers(0, 2), st.integers(0, US_PER_DAY - 1),
              st.one_of(st.sampled_from(EDGES), st.floats(allow_nan=False, allow_infinity=False))),
    min_size=1, max_size=60,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(samples)
def test_compressing_a_day_reads_back_every_value_and_timestamp_bit_for_bit(org: Any, batch: list[Any]) -> None:
    """Irregular microsecond timestamps, repeats resolved by the write path (the later write wins) before
    compression, edge floats: what the read side returns after compression is what it returned before."""
    with transaction.atomic():
        series = [SeriesFactory(organization=org).id for _ in range(3)]
        make_day(DAY)
        for which, offset, value in batch:
            write(series[which], [DAY_US + offset], [value])
        before = stored(series, DAY_US, DAY_US + US_PER_DAY - 1)
        with connection.cursor() as cursor:
            done = compressed.compress_partition(cursor, DAY)
        assert done["rows"] == len(before)
        assert DAY not in existing_days(connection.cursor())
        assert stored(series, DAY_US, DAY_US + US_PER_DAY - 1) == before
        transaction.set_rollback(True)


def test_long_series_are_split_into_bounded_chunks(org: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compressed, "MAX_CHUNK_VALUES", 100)
    series = SeriesFactory(organization=org).id
    make_day(DAY)
    write(series, [DAY_US + i * 1_000_000 for i in range(250)], [float(i) for i in range(250)])
    with connection.cursor() as cursor:
        assert compressed.compress_partition(cursor, DAY) == {"rows": 250, "series": 1, "chunks": 3}
        cursor.execute("SELECT count FROM metrics_sample_compressed WHERE series_id = %s ORDER BY first_time",
                       [series])
        assert [r[0] for r in cursor.fetchall()] == [100, 100, 50]
    got = stored([series], DAY_US, DAY_US + US_PER_DAY - 1)
    assert [got[(series, DAY_US + i * 1_000_000)] for i in range(250)] == bits(float(i) for i in range(250))


def test_a_day_is_rewritten_in_batches_of_whole_series(org: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Bounded memory: many COPY batches (sparse series ids included), every series still one chunk."""
    monkeypatch.setattr(compressed, "BATCH_ROWS", 60)
    series = [SeriesFactory(organization=org).id for _ in range(6)]
    del series[2:4]  # a gap in the ids
    make_day(DAY)
    for sid in series:
        write(sid, [DAY_US + i * 1_000_000 for i in range(40)], [sid + i / 8 for i in range(40)])
    before = stored(series, DAY_US, DAY_US + US_PER_DAY - 1)
    with connection.cursor() as cursor:
        assert compressed.compress_partition(cursor, DAY) == {"rows": 160, "series": 4, "chunks": 4}
    assert stored(series, DAY_US, DAY_US + US_PER_DAY - 1) == before


# -- reads, late data, rollups -------------------------------------------------------------------------------


def _write_two_days(series: int) -> list[tuple[int, float]]:
    """Every 10 s over the compressed day and the next (row) day."""
    points = [(DAY_US + i * 10_000_000, float((i * 7) % 101) + 0.25) for i in range(2 * 8640)]
    make_day(DAY)
    make_day(DAY + dt.timedelta(days=1))
    write(series, [t for t, _ in points], [v for _, v in points])
    return points


def _get(client: Any, **params: Any) -> dict[str, Any]:
    response = client.get("/api/v1/metrics", params)
    assert response.status_code == 200, response.content
    return response.json()


def test_the_read_api_answers_across_the_compressed_boundary_as_before(org: Any, read_token: str,
                                                                      api_client: Any) -> None:
    series = SeriesFactory(organization=org, name="cpu_load")
    _write_two_days(series.id)
    client = api_client(token=read_token)
    edge = DAY_LO + dt.timedelta(days=1)
    window = {"name": "cpu_load", "start": (edge - dt.timedelta(hours=1)).isoformat(),
              "end": (edge + dt.timedelta(hours=1)).isoformat()}
    queries = [dict(window, tier="raw"), dict(window, tier="raw", step=60, agg="max"),
               dict(window, tier="raw", step=300, agg="avg", percentiles="p50,p99"),
               dict(window, tier="raw", step=3600, agg="last")]
    before = [_get(client, **q) for q in queries]
    assert len(before[0]["series"][0]["points"]) == 721
    with connection.cursor() as cursor:
        compressed.compress_partition(cursor, DAY)
    assert [_get(client, **q) for q in queries] == before


def test_a_late_sample_into_a_compressed_day_wins_and_the_next_compression_merges_it(org: Any) -> None:
    series = SeriesFactory(organization=org).id
    points = _write_two_days(series)
    with connection.cursor() as cursor:
        compressed.compress_partition(cursor, DAY)
    replaced, new = points[100][0], DAY_US + 5
    write(series, [replaced, new], [-1.5, 2.5])  # lands in DEFAULT: the day's partition is gone
    day_span = (DAY_US, DAY_US + US_PER_DAY - 1)
    expected = {(series, t): b for (t, _), b in zip(points[:8640], bits(v for _, v in points[:8640]), strict=True)}
    expected[(series, replaced)] = bits([-1.5])[0]
    expected[(series, new)] = bits([2.5])[0]
    assert stored([series], *day_span) == expected

    # ensure_partitions moves DEFAULT's rows into a re-created day partition; compression merges it again.
    storage.ensure_partitions(days_ahead=0)
    assert DAY in existing_days(connection.cursor())
    finalise_rollups(timezone.now())
    report = compression.compress_raw(older_than=dt.timedelta(days=1))
    assert report.days[DAY] == {"rows": 2, "series": 1, "chunks": 1}  # and the next day, closed too
    assert stored([series], *day_span) == expected
    with connection.cursor() as cursor:
        cursor.execute("SELECT count FROM metrics_sample_compressed WHERE series_id = %s AND first_time < %s",
                       [series, DAY_LO + dt.timedelta(days=1)])
        assert cursor.fetchall() == [(8641,)]


def test_rollups_of_a_compressed_range_equal_those_of_its_rows(org: Any) -> None:
    """A late-data re-roll of a compressed day (jobs' step statement) computes the same 1m buckets."""
    series = [SeriesFactory(organization=org).id for _ in range(2)]
    for sid in series:
        _write_two_days(sid)
    tier = TIERS[0]
    lo, hi = DAY_LO + dt.timedelta(hours=23), DAY_LO + dt.timedelta(hours=25)
    rollup_storage.ensure_range(tier, lo, hi)
    with transaction.atomic():
        jobs._execute(tier, lo, hi, None)
    before = rows("1m", series)
    assert len(before) == 2 * 120
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM metrics_rollup_1m WHERE series_id = ANY(%s)", [series])
        compressed.compress_partition(cursor, DAY)
    with transaction.atomic():
        jobs._execute(tier, lo, hi, None)
    assert rows("1m", series) == before
    assert jobs._series_in(tier, lo, hi) == sorted(series)
    assert jobs._data_range(tier, series[0], lo, hi) == (lo, hi)


# -- when, and from where ------------------------------------------------------------------------------------


def test_compression_waits_for_old_enough_days_with_final_rollups(org: Any) -> None:
    series = SeriesFactory(organization=org).id
    make_day(DAY)
    write(series, [DAY_US + 1], [1.0])
    now = timezone.now()
    finalise_rollups(DAY_LO + dt.timedelta(hours=12))  # behind the day's end
    due, waiting = compression.due_days(now, dt.timedelta(days=1))
    assert DAY in waiting and DAY not in due
    finalise_rollups(now)
    late = RollupInvalidation.objects.create(lo=DAY_LO + dt.timedelta(hours=3), hi=DAY_LO + dt.timedelta(hours=4))
    assert DAY in compression.due_days(now, dt.timedelta(days=1))[1]
    late.delete()
    due, waiting = compression.due_days(now, dt.timedelta(days=1))
    assert DAY in due and TODAY not in due and TODAY - dt.timedelta(days=1) not in due
    assert DAY not in compression.due_days(now, dt.timedelta(days=4))[0]  # --older-than 4d: too young


def test_the_beat_task_and_the_command_compress_due_days(org: Any, capsys: pytest.CaptureFixture[str]) -> None:
    series = SeriesFactory(organization=org).id
    make_day(DAY)
    make_day(DAY - dt.timedelta(days=1))
    write(series, [DAY_US + 1, DAY_US - 1], [1.0, 2.0])
    finalise_rollups(timezone.now())
    call_command("compress_raw", "--older-than", "3d", "--limit", "1")
    assert "compressed 1 raw partitions, 1 values" in capsys.readouterr().out
    assert DAY - dt.timedelta(days=1) not in existing_days(connection.cursor())
    # The beat default (one day): the day and the empty partition after it (made by make_day) go too.
    assert compress_chunks.apply().get().startswith("compressed 2 raw partitions, 1 values")
    assert DAY not in existing_days(connection.cursor())
    assert chunk_days(series) == [DAY - dt.timedelta(days=1), DAY]
    assert stored([series], DAY_US - 10, DAY_US + 10) == {(series, DAY_US - 1): bits([2.0])[0],
                                                          (series, DAY_US + 1): bits([1.0])[0]}


def test_a_compression_that_fails_leaves_the_day_as_it_was_and_the_next_run_does_it(
        org: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    series = SeriesFactory(organization=org).id
    make_day(DAY)
    write(series, [DAY_US + 1, DAY_US + 2], [1.0, 2.0])
    finalise_rollups(timezone.now())
    before = stored([series], DAY_US, DAY_US + 10)

    def crash(*args: Any) -> None:
        raise RuntimeError("worker killed")

    monkeypatch.setattr(compressed.ddl, "drop_partition", crash)
    with pytest.raises(RuntimeError, match="worker killed"):
        compression.compress_raw(older_than=dt.timedelta(days=1))
    assert DAY in existing_days(connection.cursor())
    assert chunk_days(series) == []
    assert stored([series], DAY_US, DAY_US + 10) == before
    monkeypatch.undo()
    assert compression.compress_raw(older_than=dt.timedelta(days=1)).days[DAY]["rows"] == 2
    assert DAY not in existing_days(connection.cursor())
    assert stored([series], DAY_US, DAY_US + 10) == before


def test_the_command_refuses_a_bad_duration() -> None:
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="--older-than"):
        call_command("compress_raw", "--older-than", "soon")


def test_retention_deletes_compressed_chunks_past_the_raw_cutoff(org: Any) -> None:
    series = SeriesFactory(organization=org).id
    old, kept = TODAY - dt.timedelta(days=9), TODAY - dt.timedelta(days=5)
    for day in (old, kept):
        make_day(day)
        write(series, [int(dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC).timestamp()) * 1_000_000], [1.0])
        with connection.cursor() as cursor:
            compressed.compress_partition(cursor, day)
    report = retention.apply_retention()
    assert any(d.startswith("metrics_sample_compressed:") for d in report["raw"]["dropped"])
    assert chunk_days(series) == [kept]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("granted")
def test_the_app_role_compresses_and_reads_through_the_owner_functions(org: Any) -> None:
    """The DML-only role (docs/database-roles.md) runs the beat task: chunks written, the partition
    dropped through ``fiberstack_drop_partition``, the values read back."""
    from tests.core.test_database_roles import django_as_app_role

    series = SeriesFactory(organization=org).id
    make_day(DAY)
    write(series, [DAY_US + 7], [0.5])
    finalise_rollups(timezone.now())
    try:
        with django_as_app_role():
            assert compress_chunks.delay().get().startswith("compressed ")
            assert DAY not in existing_days(connection.cursor())
            assert stored([series], DAY_US, DAY_US + 10) == {(series, DAY_US + 7): bits([0.5])[0]}
    finally:
        with connection.cursor() as cursor:  # not a model table: the flush between tests leaves it
            cursor.execute("DELETE FROM metrics_sample_compressed")


def test_late_data_into_a_compressed_day_reaches_every_tier_and_the_raw_api(org: Any, write_token: str,
                                                                            read_token: str,
                                                                            api_client: Any) -> None:
    """Through the doors and the rollup task: an hour already compressed, a late hour into the same day
    (DEFAULT), and a later write replacing one compressed sample; every tier and raw agree."""
    from apps.metrics.rollup_tasks import rollup
    from tests.metrics.factories import post
    from tests.metrics.test_rollups_late import _caught_up, _post_hour, _tier_totals

    _caught_up()
    first = DAY_LO + dt.timedelta(hours=10)
    _post_hour(first, write_token)
    rollup.delay().get()
    rollup.delay().get()
    report = compression.compress_raw(older_than=dt.timedelta(days=1))
    assert DAY in report.days and report.days[DAY]["rows"] == 720
    _post_hour(first + dt.timedelta(hours=1), write_token)
    replaced = f"cpu,host=web-1 load=100 {int(first.timestamp())}\n"  # was 0 (i % 7 at i = 0)
    assert post("/write?precision=s", replaced, token=write_token).status_code == 204
    rollup.delay().get()
    rollup.delay().get()
    client = api_client(token=read_token)
    window = (DAY_LO, DAY_LO + dt.timedelta(days=1) - dt.timedelta(seconds=1))
    load_sum = 2.0 * sum(i % 7 for i in range(360)) + 100
    for tier in (t.name for t in TIERS):
        assert _tier_totals(client, "cpu_load", tier, *window) == (720.0, load_sum), tier
        assert _tier_totals(client, "probe_rtt", tier, *window) == (720.0, 1800.0), tier
    raw = _get(client, name="cpu_load", tier="raw", start=window[0].isoformat(), end=window[1].isoformat())
    [points] = [s["points"] for s in raw["series"]]
    assert (len(points), sum(v for _, v in points)) == (720, load_sum)
    assert points[0] == [first.timestamp(), 100.0]


@pytest.mark.django_db(transaction=True)
def test_a_reader_between_its_chunk_lookup_and_its_rows_holds_off_the_partition_drop(org: Any) -> None:
    """The lookup takes the parent's lock for the reader's transaction, so a compression committing in
    between cannot drop rows the reader did not get as chunks: its DETACH waits (here: times out)."""
    import psycopg

    series = SeriesFactory(organization=org).id
    make_day(DAY)
    write(series, [DAY_US + 3], [4.0])
    s = connection.settings_dict
    other = psycopg.connect(host=s["HOST"], port=s["PORT"] or 5432, dbname=s["NAME"], user=s["USER"],
                            password=s["PASSWORD"], autocommit=True)
    name = storage.partitioned.partition_name(DAY)
    try:
        other.execute("SET lock_timeout = '300ms'")
        with transaction.atomic(), connection.cursor() as cursor:
            assert compressed.read_params(cursor, DAY_LO, DAY_LO + dt.timedelta(hours=1), [series]) \
                == compressed.EMPTY_PARAMS
            with pytest.raises(psycopg.errors.LockNotAvailable):
                other.execute(f"ALTER TABLE metrics_sample DETACH PARTITION {name}")
        other.execute(f"ALTER TABLE metrics_sample DETACH PARTITION {name}")  # free once the reader is done
        other.execute(f"ALTER TABLE metrics_sample ATTACH PARTITION {name} FOR VALUES FROM "
                      f"('{DAY_LO.isoformat()}') TO ('{(DAY_LO + dt.timedelta(days=1)).isoformat()}')")
    finally:
        other.execute("DELETE FROM metrics_sample WHERE series_id = %s", [series])  # not flushed: no model
        other.close()


@pytest.mark.django_db(transaction=True)
def test_a_reader_holding_the_table_makes_the_day_wait_for_the_next_run_not_stall(
        org: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Dropping the compressed partition needs the parent to itself; new readers queue behind that wait.
    So the pass waits at most ``ddl.READERS_WAIT`` for a reader in flight, leaves the day as it was
    (rolled back: rows, no chunk) and reports it busy; the next run does it. It used to wait without end."""
    import psycopg

    monkeypatch.setattr(ddl, "READERS_WAIT", "300ms")
    # Days left by earlier tests on this database (transactional tests keep their partitions) would be the
    # first the pass meets busy, and it stops there: make them due and compress them now.
    finalise_rollups(timezone.now())
    compression.compress_raw(older_than=dt.timedelta(days=1))
    series = SeriesFactory(organization=org).id
    make_day(DAY)
    write(series, [DAY_US + 1, DAY_US + 2], [1.0, 2.0])
    finalise_rollups(timezone.now())
    before = stored([series], DAY_US, DAY_US + 10)
    s = connection.settings_dict
    reader = psycopg.connect(host=s["HOST"], port=s["PORT"] or 5432, dbname=s["NAME"], user=s["USER"],
                             password=s["PASSWORD"])
    with connection.cursor() as cursor:
        cursor.execute("SET lock_timeout = '30s'")  # a pass that waited without end fails, not hangs
    try:
        reader.execute("SELECT count(*) FROM metrics_sample WHERE series_id = %s", [series])  # its transaction
        started = time.monotonic()
        report = compression.compress_raw(older_than=dt.timedelta(days=1))
        assert time.monotonic() - started < 10  # READERS_WAIT (300 ms) plus the work, not the session's 30 s
        assert report.days == {} and report.busy == [str(DAY)]
        assert "tables busy, left for the next run: " + str(DAY) in report.summary()
        assert DAY in existing_days(connection.cursor()) and chunk_days(series) == []
        reader.commit()
        assert compression.compress_raw(older_than=dt.timedelta(days=1)).days[DAY]["rows"] == 2
        assert stored([series], DAY_US, DAY_US + 10) == before
    finally:
        reader.close()
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")
