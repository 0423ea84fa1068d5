"""Compressed rollup partitions on plain PostgreSQL: the chunk codec is lossless (every column bit for bit,
every sketch bin for bin), compressing a partition changes no answer of the read API -- percentiles keep the
sketch's error bound against exact ones --, late re-rolls over a compressed partition win and reach the
coarser tiers, a second compression merges, the job waits for final rollups, retention deletes chunks past a
tier's cutoff, and the migration goes both ways."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.metrics import compression, retention
from apps.metrics.read.fetch import fetch
from apps.metrics.read.plan import Plan
from apps.metrics.rollups import compressed, jobs
from apps.metrics.rollups import storage as rollup_storage
from apps.metrics.rollups.models import RollupState
from apps.metrics.rollups.tiers import BY_NAME, TIERS, TierSpec
from apps.metrics.sketch import KEY_OFFSET, RELATIVE_ACCURACY, QuantileSketch
from tests.metrics.factories import SeriesFactory
from tests.metrics.migration_helpers import migration_and_parent
from tests.metrics.rollup_helpers import raw_stats, write

pytestmark = pytest.mark.django_db

TODAY = timezone.now().date()
DAY = TODAY - dt.timedelta(days=3)
DAY_LO = dt.datetime.combine(DAY, dt.time(), tzinfo=dt.UTC)
DAY_HI = DAY_LO + dt.timedelta(days=1)
M1, M5 = BY_NAME["1m"], BY_NAME["5m"]


def roll(tier: TierSpec, lo: dt.datetime, hi: dt.datetime) -> None:
    rollup_storage.ensure_range(tier, lo, hi)
    with transaction.atomic():
        jobs._execute(tier, lo, hi, None)


def tier_rows(tier: TierSpec, series: list[int], lo: dt.datetime = DAY_LO,
              hi: dt.datetime = DAY_HI) -> list[tuple[Any, ...]]:
    """Every bucket the readers see (rows and chunks), through ``source_sql``."""
    with connection.cursor() as cursor:
        params = compressed.read_params(cursor, tier, lo, hi, series)
        cursor.execute(f"SELECT {compressed.COLUMNS} FROM {compressed.source_sql(tier)} AS t "
                       "WHERE series_id = ANY(%(ids)s) AND bucket >= %(lo)s AND bucket < %(hi)s "
                       "ORDER BY series_id, bucket", {"ids": series, "lo": lo, "hi": hi, **params})
        found = cursor.fetchall()
    assert len({(r[0], r[1]) for r in found}) == len(found), "a bucket read twice"
    return found


def compress_day(tier: TierSpec = M1, day: dt.date = DAY) -> dict[str, int]:
    start = rollup_storage.partition_start(tier, day)
    name = rollup_storage.partition_name(tier, start)
    lo = dt.datetime.combine(start, dt.time(), tzinfo=dt.UTC)
    hi = dt.datetime.combine(rollup_storage.partition_end(tier, start), dt.time(), tzinfo=dt.UTC)
    with connection.cursor() as cursor:
        return compressed.compress_partition(cursor, tier, name, lo, hi)


def partitions(tier: TierSpec) -> set[str]:
    with connection.cursor() as cursor:
        return set(rollup_storage.existing_partitions(cursor, tier.table))


def finalise_rollups(until: dt.datetime) -> None:
    for tier in TIERS:
        RollupState.objects.update_or_create(tier=tier.name, defaults={"watermark": until, "dirty_from": None,
                                                                       "dirty_to": None})


# -- the codec -----------------------------------------------------------------------------------------------

keys_of_a_bucket = st.lists(st.one_of(st.just(0), st.integers(KEY_OFFSET - 37590, KEY_OFFSET + 35840),
                                      st.integers(-(KEY_OFFSET + 35840), -(KEY_OFFSET - 37590))),
                            min_size=1, max_size=12, unique=True).map(sorted)
finite = st.floats(allow_nan=False, allow_infinity=False)
# A bucket that kept its values: the values (their number is the bucket's count), no keys.
kept_values = st.lists(finite, min_size=1, max_size=12).map(sorted)
bucket = st.one_of(
    st.tuples(keys_of_a_bucket, st.integers(1, 2**31 - 1), finite, finite, finite, finite, st.integers(1, 2**40),
              st.just([])),
    kept_values.flatmap(lambda v: st.tuples(st.just([]), st.just(1), finite, finite, finite, finite,
                                            st.just(len(v)), st.just(v))),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(bucket, min_size=1, max_size=40))
def test_chunks_round_trip_every_column_sketch_bin_and_kept_value(items: list[Any]) -> None:
    rng = np.random.default_rng(len(items))
    bins = np.array([len(k) for k, *_ in items], dtype=np.int64)
    kept = np.array([len(i[7]) for i in items], dtype=np.int64)
    b = compressed.Buckets(
        np.arange(len(items), dtype=np.int64) * 60_000_000, np.array([i[6] for i in items], dtype=np.int64),
        np.array([i[2] for i in items]), np.array([i[3] for i in items]), np.array([i[4] for i in items]),
        np.array([i[5] for i in items]), bins, np.array([k for i in items for k in i[0]], dtype=np.int64),
        rng.integers(1, max(i[1] for i in items) + 1, size=int(bins.sum())).astype(np.int64),
        kept, np.array([v for i in items for v in i[7]], dtype=np.float64),
    )
    back = compressed.decode(compressed.encode(b))
    for name in compressed.Buckets.__dataclass_fields__:
        assert getattr(back, name).view(np.int64).tolist() == getattr(b, name).view(np.int64).tolist(), name
    assert [back.sketch(i) for i in range(b.size)] == [b.sketch(i) for i in range(b.size)]
    assert [back.values(i) for i in range(b.size)] == [i[7] for i in items]
    picked = np.arange(b.size)[::-1]
    assert [b.take(picked).values(j) for j in range(b.size)] == [items[i][7] for i in picked.tolist()]


def test_a_chunk_written_before_kept_values_existed_decodes_with_none() -> None:
    b = compressed.Buckets(*(np.array([v], dtype=np.int64) for v in (0, 1)), *(np.array([2.5]) for _ in range(4)),
                           np.array([1]), np.array([KEY_OFFSET]), np.array([1]), np.array([0]), np.array([]))
    blobs = compressed.encode(b)
    blobs[compressed.EXACT_BLOB] = None  # the column migration 0010 added, NULL in older chunks
    back = compressed.decode(blobs)
    assert back.sketch(0) == ([KEY_OFFSET], [1]) and back.values(0) == [] and back.kept.tolist() == [0]


def test_keys_are_stored_as_small_deltas() -> None:
    keys = np.array([40100, 40103, 40110, 40101, 40104], dtype=np.int64)
    bins = np.array([3, 2], dtype=np.int64)
    assert compressed.delta_keys(keys, bins).tolist() == [40100, 3, 7, 1, 3]
    assert compressed.undelta_keys(compressed.delta_keys(keys, bins), bins).tolist() == keys.tolist()


# -- reading a compressed partition --------------------------------------------------------------------------

values = st.one_of(st.floats(-1e6, 1e6, allow_nan=False), st.sampled_from([0.0, -0.0, 1e-300, 58.0, -3.25]))
samples = st.lists(st.tuples(st.integers(0, 1), st.integers(0, 86_399), values), min_size=1, max_size=80)


def _exact_percentile(vals: list[float], q: float) -> float:
    ordered = sorted(vals)
    return ordered[max(math.ceil(q * len(ordered)), 1) - 1]


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(samples)
def test_a_compressed_partition_answers_like_its_rows_and_within_the_sketch_bound(org: Any,
                                                                                  batch: list[Any]) -> None:
    """Through ``read.fetch`` (the API's code path): steps of every aggregate and the p50/p95/p99 summary
    are identical before and after compression, and the percentiles are within RELATIVE_ACCURACY of the
    exact ``percentile_disc`` of the raw values."""
    with transaction.atomic():
        series = [SeriesFactory(organization=org).id for _ in range(2)]
        from apps.metrics import storage

        storage.ensure_partitions(days_ahead=0, today=DAY + dt.timedelta(days=1))
        by_series: dict[int, dict[int, float]] = {sid: {} for sid in series}
        for which, second, value in batch:
            by_series[series[which]][second] = value  # one value per instant: the later write wins
        for sid, points in by_series.items():
            if points:
                write(sid, [(DAY_LO + dt.timedelta(seconds=s), v) for s, v in sorted(points.items())])
        roll(M1, DAY_LO, DAY_HI)
        finalise_rollups(timezone.now())
        plan = Plan(tier="1m", step=300, start=DAY_LO, end=DAY_HI - dt.timedelta(microseconds=1))
        before = {agg: fetch(plan, series, agg, ["p50", "p95", "p99"]) for agg in ("max", "avg", "last", "p95")}
        rows_before = tier_rows(M1, series)
        compress_day()
        assert rollup_storage.partition_name(M1, DAY) not in partitions(M1)
        assert tier_rows(M1, series) == rows_before
        for agg, answer in before.items():
            after = fetch(plan, series, agg, ["p50", "p95", "p99"])
            assert after.points == answer.points and after.summary == answer.summary, agg
        for sid, points in by_series.items():
            if not points:
                continue
            summary = before["max"].summary[sid]
            for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
                exact = _exact_percentile(list(points.values()), q)
                assert abs(summary[name] - exact) <= RELATIVE_ACCURACY * abs(exact) + 1e-300, (name, exact)
        transaction.set_rollback(True)


def test_a_late_re_roll_over_a_compressed_partition_wins_and_reaches_the_coarser_tier(org: Any) -> None:
    series = SeriesFactory(organization=org).id
    from apps.metrics import storage

    storage.ensure_partitions(days_ahead=0, today=DAY + dt.timedelta(days=1))
    write(series, [(DAY_LO + dt.timedelta(seconds=10 * i), float(i % 7)) for i in range(8640)])
    roll(M1, DAY_LO, DAY_HI)
    roll(M5, DAY_LO, DAY_HI)
    assert compress_day()["buckets"] == 1440
    hour = DAY_LO + dt.timedelta(hours=5)
    write(series, [(hour + dt.timedelta(seconds=5), 1000.0)])  # late, into the compressed 1m day
    roll(M1, hour, hour + dt.timedelta(hours=1))  # the re-roll re-creates the partition: rows win
    assert rollup_storage.partition_name(M1, DAY) in partitions(M1)
    one_m = tier_rows(M1, [series])
    assert len(one_m) == 1440
    assert [r[2:6] for r in one_m] == [r[2:6] for r in raw_stats("1m", [series]) if DAY_LO <= r[0] < DAY_HI]
    roll(M5, hour, hour + dt.timedelta(hours=1))  # the 5m step reads its 1m source from rows and chunks
    five = [r[2:7] for r in tier_rows(M5, [series])]
    assert five == [r[2:7] for r in raw_stats("5m", [series]) if DAY_LO <= r[0] < DAY_HI]
    # A second compression merges the re-rolled hour into the day's chunk.
    assert compress_day()["buckets"] == 1440
    assert tier_rows(M1, [series]) == one_m
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*), sum(buckets_count) FROM {compressed.table(M1)} WHERE series_id = %s",
                       [series])
        assert cursor.fetchone() == (1, 1440)


def test_the_job_compresses_rollup_partitions_only_when_final_and_retention_deletes_them(org: Any) -> None:
    series = SeriesFactory(organization=org).id
    from apps.metrics import storage

    storage.ensure_partitions(days_ahead=0, today=DAY + dt.timedelta(days=1))
    write(series, [(DAY_LO + dt.timedelta(hours=1), 2.0)])
    roll(M1, DAY_LO, DAY_HI)
    name = rollup_storage.partition_name(M1, DAY)
    finalise_rollups(DAY_LO + dt.timedelta(hours=12))  # the coarser tiers are behind the day's end
    assert name not in compression.compress_rollups(older_than=dt.timedelta(days=1)).rollup_partitions
    finalise_rollups(timezone.now())
    report = compression.compress_raw(older_than=dt.timedelta(days=1))
    assert report.rollup_partitions[name] == {"buckets": 1, "series": 1}
    assert "rollup partitions" in report.summary()
    assert name not in partitions(M1)
    assert [r[2:7] for r in tier_rows(M1, [series])] == [(1, 2.0, 2.0, 2.0, 2.0)]
    dropped = retention.drop_expired("1m", DAY_HI)
    assert f"{compressed.table(M1)}:1" in dropped
    assert tier_rows(M1, [series]) == []


@pytest.mark.django_db(transaction=True)
def test_the_compressed_rollup_tables_migration_goes_back_and_forward() -> None:
    name, parent = migration_and_parent("metrics", "_compressed_rollup_chunks")
    tables = {compressed.table(tier) for tier in TIERS}
    try:
        call_command("migrate", "metrics", parent, verbosity=0, interactive=False)
        assert not tables & set(connection.introspection.table_names())
        call_command("migrate", "metrics", name, verbosity=0, interactive=False)
        assert tables <= set(connection.introspection.table_names())
    finally:
        call_command("migrate", verbosity=0, interactive=False)


def test_a_shorter_retention_trims_the_organizations_whole_chunks_only(org: Any, other_org: Any) -> None:
    from apps.metrics import storage

    mine, theirs = SeriesFactory(organization=org).id, SeriesFactory(organization=other_org).id
    storage.ensure_partitions(days_ahead=0, today=DAY + dt.timedelta(days=1))
    for sid in (mine, theirs):
        write(sid, [(DAY_LO + dt.timedelta(hours=1), 2.0)])
    roll(M1, DAY_LO, DAY_HI)
    compress_day()
    with connection.cursor() as cursor:
        assert compressed.trim_organization(cursor, M1, org.pk, DAY_LO + dt.timedelta(hours=1)) == 0  # straddles
        assert compressed.trim_organization(cursor, M1, org.pk, DAY_HI) == 1
    assert [r[1] for r in tier_rows(M1, [mine, theirs])] == [theirs]


def _sketches_in_the_old_shape(series: int) -> dict[dt.datetime, tuple[list[int], list[int]]]:
    """Bucket -> sketch of ``series`` in the 1m rows and chunks, read without ``exact_values`` (gone there)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT bucket, sketch_keys, sketch_counts FROM {M1.table} WHERE series_id = %s", [series])
        found = {bucket: (keys, counts) for bucket, keys, counts in cursor.fetchall()}
        blobs = ("buckets", "counts", "sums", "mins", "maxs", "lasts", "bins", "sketch_keys", "sketch_counts")
        cursor.execute(f"SELECT {', '.join(blobs)} FROM {compressed.table(M1)} WHERE series_id = %s", [series])
        for row in cursor.fetchall():
            chunk = compressed.decode(dict(zip(blobs, (bytes(b) for b in row), strict=True)))
            for i in range(chunk.size):
                found[compressed._ts(chunk.bucket[i])] = chunk.sketch(i)
    return found


@pytest.mark.django_db(transaction=True)
def test_the_kept_values_migration_turns_them_into_sketches_in_rows_and_chunks_and_goes_forward_again(
        org: Any) -> None:
    """Backwards, every bucket that kept its values -- as a row or inside a compressed chunk -- gets the sketch
    the rollup would have built and the column goes; forwards again, the tier reads the same statistics."""
    from apps.metrics import storage

    series = SeriesFactory(organization=org).id
    storage.ensure_partitions(days_ahead=0, today=DAY + dt.timedelta(days=1))
    points = [(DAY_LO + dt.timedelta(seconds=10 * i), (i % 7) + i / 1000) for i in range(720)]  # two hours
    write(series, points)
    roll(M1, DAY_LO, DAY_HI)
    with transaction.atomic(), connection.cursor() as cursor:  # the first hour into chunks, the second stays rows
        compressed.compress_range(cursor, M1, rollup_storage.partition_name(M1, DAY), DAY_LO,
                                  DAY_LO + dt.timedelta(hours=1))
    before = tier_rows(M1, [series])
    minutes: dict[dt.datetime, list[float]] = {}
    for time, value in points:
        minutes.setdefault(time.replace(second=0), []).append(value)
    assert {r[0]: r[7] for r in before} == {m: sorted(v) for m, v in minutes.items()}
    sketches = {m: QuantileSketch.of(v).to_arrays() for m, v in minutes.items()}
    name, parent = migration_and_parent("metrics", "_rollup_exact_values")
    try:
        call_command("migrate", "metrics", parent, verbosity=0, interactive=False)
        assert _sketches_in_the_old_shape(series) == sketches
        call_command("migrate", "metrics", name, verbosity=0, interactive=False)
        after = tier_rows(M1, [series])
        assert [r[:7] for r in after] == [r[:7] for r in before]
        assert {r[0]: (r[7], (r[8], r[9])) for r in after} == {m: (None, s) for m, s in sketches.items()}
    finally:
        call_command("migrate", verbosity=0, interactive=False)
        with connection.cursor() as cursor:
            for table in (M1.table, compressed.table(M1)):
                cursor.execute(f"DELETE FROM {table} WHERE series_id = %s", [series])
            cursor.execute("DELETE FROM metrics_sample WHERE series_id = %s", [series])
