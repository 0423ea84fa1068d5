"""The rollup jobs and the tier reads on a real TimescaleDB: every tier equals SQL over the raw samples,
a second run changes nothing, compressed raw chunks roll up like uncompressed ones, and percentiles from
merged sketches stay within the sketch's relative accuracy of the exact raw percentile."""

from __future__ import annotations

import datetime as dt
import math
import random
from typing import Any

import pytest

from apps.metrics import storage
from tests.timescale.samples import every_minute, fetch, insert_samples

pytestmark = pytest.mark.xdist_group("timescale")

NOW = dt.datetime(2026, 3, 10, 0, 3, tzinfo=dt.UTC)
START = dt.datetime(2026, 3, 8, 22, 0, tzinfo=dt.UTC)  # 26 hours of data, over a UTC day boundary
SERIES = [11, 12, 13]


def _values(seed: int = 7) -> Any:
    rng = random.Random(seed)
    return lambda time, sid: round(rng.lognormvariate(3 + sid % 3, 0.8), 3)


def _raw_by(connection: Any, seconds: int) -> list[tuple[Any, ...]]:
    return fetch(
        connection,
        f"""SELECT series_id, date_bin(make_interval(secs => %s), time, TIMESTAMPTZ '1970-01-01 00:00:00+00') AS b,
                   count(*), round(sum(value)::numeric, 6), min(value), max(value)
            FROM {storage.TABLE} WHERE time < %s GROUP BY 1, 2 ORDER BY 1, 2""",
        [seconds, NOW.replace(minute=0)],
    )


def _tier(connection: Any, table: str) -> list[tuple[Any, ...]]:
    return fetch(
        connection,
        f"SELECT series_id, bucket, count, round(sum::numeric, 6), min, max FROM {table} "
        "WHERE bucket < %s ORDER BY 1, 2",
        [NOW.replace(minute=0)],
    )


def test_every_tier_equals_sql_over_raw_and_a_second_run_changes_nothing(ts: Any) -> None:
    jobs = pytest.importorskip("apps.metrics.rollups.jobs")
    from apps.metrics.rollups.tiers import TIERS

    insert_samples(ts, every_minute(START, NOW, SERIES, _values()))

    reports = jobs.run_rollups(now=NOW, budget_seconds=600)

    assert [r.tier for r in reports] == ["1m", "5m", "1h", "1d"]
    assert all(r.caught_up for r in reports)
    for tier in TIERS:
        assert _tier(ts, tier.table) == _raw_by(ts, tier.seconds), tier.name
    # The current (still filling) buckets are rolled too: every sample is in every tier.
    total = len(SERIES) * (26 * 60 + 3)
    assert fetch(ts, "SELECT sum(count) FROM metrics_rollup_1d") == [(total,)]

    again = jobs.run_rollups(now=NOW, budget_seconds=600)
    assert [r.rows for r in again] == [0, 0, 0, 0]


def test_rollups_read_compressed_raw_chunks(ts: Any) -> None:
    jobs = pytest.importorskip("apps.metrics.rollups.jobs")
    retention = pytest.importorskip("apps.metrics.retention")
    insert_samples(ts, every_minute(START, NOW, SERIES, _values(3)))
    assert retention.compress_raw_chunks(now=NOW + dt.timedelta(days=3)) == 2  # 8 and 9 March

    jobs.run_rollups(now=NOW, budget_seconds=600)

    assert _tier(ts, "metrics_rollup_1h") == _raw_by(ts, 3600)


def test_percentiles_from_every_tier_are_within_the_sketch_accuracy(ts: Any) -> None:
    jobs = pytest.importorskip("apps.metrics.rollups.jobs")
    read = pytest.importorskip("apps.metrics.read.fetch")
    sketch = pytest.importorskip("apps.metrics.sketch")
    insert_samples(ts, every_minute(START, NOW, SERIES, _values(5)))
    jobs.run_rollups(now=NOW, budget_seconds=600)
    start, end = dt.datetime(2026, 3, 9, tzinfo=dt.UTC), dt.datetime(2026, 3, 9, 23, 59, 59, tzinfo=dt.UTC)
    exact = dict(
        fetch(
            ts,
            f"""SELECT series_id, percentile_disc(0.95) WITHIN GROUP (ORDER BY value) FROM {storage.TABLE}
                WHERE time >= %s AND time <= %s GROUP BY 1""",
            [start, end],
        )
    )
    for tier, step in (("1m", 86_400), ("5m", 86_400), ("1h", 86_400), ("1d", 86_400)):
        answer = read.fetch(read.Plan(tier=tier, step=step, start=start, end=end), SERIES, "avg", ["p95"])
        for sid in SERIES:
            got = answer.summary[sid]["p95"]
            assert got is not None, (tier, sid)
            assert math.isclose(got, exact[sid], rel_tol=sketch.RELATIVE_ACCURACY), (tier, sid, got, exact[sid])
            assert answer.summary[sid]["count"] == 24 * 60, (tier, sid)


def test_rollup_chunks_compress_natively_and_late_data_re_rolls_into_them(ts: Any) -> None:
    """Closed rollup chunks compress (segmented by series, like raw); a late sample for a compressed day
    re-rolls through the invalidation log, and the upserts into the compressed 1m chunk and the coarser
    tiers leave every tier equal to SQL over raw."""
    jobs = pytest.importorskip("apps.metrics.rollups.jobs")
    retention = pytest.importorskip("apps.metrics.retention")
    from apps.metrics.rollups import invalidation
    from apps.metrics.rollups.tiers import TIERS

    insert_samples(ts, every_minute(START, NOW, SERIES, _values(9)))
    jobs.run_rollups(now=NOW, budget_seconds=600)
    before = {tier.name: _tier(ts, tier.table) for tier in TIERS}

    done = retention.compress_rollup_chunks(now=NOW + dt.timedelta(days=3))
    assert done is not None and done["1m"] == 2  # the 1m chunks of 8 and 9 March
    compressed = fetch(ts, "SELECT count(*) FROM timescaledb_information.chunks "
                           "WHERE hypertable_name = 'metrics_rollup_1m' AND is_compressed")
    assert compressed == [(2,)]
    assert {tier.name: _tier(ts, tier.table) for tier in TIERS} == before

    late = dt.datetime(2026, 3, 9, 12, 0, 30, tzinfo=dt.UTC)
    insert_samples(ts, [(late, SERIES[0], 100_000.0)])
    with ts.cursor() as cursor:
        invalidation.record_late(cursor, [int(late.timestamp()) * 1_000_000], now_us=int(NOW.timestamp()) * 1_000_000)
    jobs.run_rollups(now=NOW, budget_seconds=600)
    for tier in TIERS:
        assert _tier(ts, tier.table) == _raw_by(ts, tier.seconds), tier.name
    assert _tier(ts, "metrics_rollup_1m") != before["1m"]


def test_the_kept_values_migration_reverses_and_reapplies_over_compressed_rollup_chunks(ts: Any) -> None:
    """Every minute one sample: 1m buckets keep their value. Migrating back to before ``exact_values`` turns
    them into sketches (compressed chunks included, which TimescaleDB alters in place) and drops the column;
    forward again, the tiers read the same statistics."""
    from django.core.management import call_command
    from django.test import override_settings

    jobs = pytest.importorskip("apps.metrics.rollups.jobs")
    retention = pytest.importorskip("apps.metrics.retention")
    from apps.metrics.sketch import QuantileSketch
    from tests.metrics.migration_helpers import migration_and_parent
    from tests.timescale.conftest import ALIAS

    insert_samples(ts, every_minute(START, NOW, SERIES, _values(3)))
    jobs.run_rollups(now=NOW, budget_seconds=600)
    assert retention.compress_rollup_chunks(now=NOW + dt.timedelta(days=3))["1m"] == 2
    kept = fetch(ts, "SELECT series_id, bucket, exact_values FROM metrics_rollup_1m ORDER BY 1, 2")
    assert kept and all(values is not None and len(values) == 1 for _, _, values in kept)
    stats = _tier(ts, "metrics_rollup_1m")
    name, parent = migration_and_parent("metrics", "_rollup_exact_values")
    try:
        with override_settings(FIBERSTACK_TIMESCALEDB="on"):
            call_command("migrate", "metrics", parent, database=ALIAS, interactive=False, verbosity=0)
        back = fetch(ts, "SELECT series_id, bucket, sketch_keys, sketch_counts FROM metrics_rollup_1m ORDER BY 1, 2")
        assert back == [(sid, bucket, *QuantileSketch.of(values).to_arrays()) for sid, bucket, values in kept]
    finally:
        with override_settings(FIBERSTACK_TIMESCALEDB="on"):
            call_command("migrate", "metrics", name, database=ALIAS, interactive=False, verbosity=0)
    assert _tier(ts, "metrics_rollup_1m") == stats
    assert fetch(ts, "SELECT count(*) FROM metrics_rollup_1m WHERE exact_values IS NOT NULL") == [(0,)]
