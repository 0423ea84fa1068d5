"""Closed hours of the open 1m partition compressed on plain PostgreSQL (``rollups.compressed.compress_range``,
``compression.compress_rollup_hours``): an hour's rows become chunks that read back bit for bit through the
read API and the coarser tiers' jobs, several hour chunks fold into one at day close, a late re-roll into a
compressed hour wins and is merged by the next pass, a second pass changes nothing, hours that are not final
or not old enough stay rows, a reader in flight holds the pass off, and the beat task and the command run it."""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.utils import timezone

from apps.metrics import compression, storage
from apps.metrics.read.fetch import fetch
from apps.metrics.read.plan import Plan
from apps.metrics.rollup_tasks import compress_chunks
from apps.metrics.rollups import compressed
from apps.metrics.rollups import storage as rollup_storage
from apps.metrics.rollups.models import RollupInvalidation
from apps.metrics.rollups.tiers import BY_NAME
from apps.metrics.storage import ddl
from apps.metrics.storage.report import build_report
from tests.core.test_database_roles import app_role, granted  # noqa: F401 - fixtures
from tests.metrics.factories import SeriesFactory
from tests.metrics.rollup_helpers import raw_stats, write
from tests.metrics.test_rollups_compressed import (
    DAY,
    DAY_HI,
    DAY_LO,
    compress_day,
    finalise_rollups,
    partitions,
    roll,
    tier_rows,
)

pytestmark = pytest.mark.django_db

M1, M5, H1 = BY_NAME["1m"], BY_NAME["5m"], BY_NAME["1h"]
HOUR = dt.timedelta(hours=1)
PART = rollup_storage.partition_name(M1, DAY)
# The pass as of 14:00 of DAY: hours ending by 13:00 are old enough (FIBERSTACK_ROLLUP_COMPRESS_HOURS_AFTER).
NOW = DAY_LO + dt.timedelta(hours=14)


def at(hours: float) -> dt.datetime:
    return DAY_LO + dt.timedelta(hours=hours)


def twelve_hours(org: Any, series: int = 2) -> list[int]:
    """``series`` series sampled every 10 s over hours 0-12 of DAY (values that spread over many sketch
    bins), rolled into the 1m tier."""
    ids = [SeriesFactory(organization=org).id for _ in range(series)]
    storage.ensure_partitions(days_ahead=0, today=DAY + dt.timedelta(days=1))
    for k, sid in enumerate(ids):
        write(sid, [(at(0) + dt.timedelta(seconds=10 * i), (i * (k + 3)) % 97 + 0.25 * k) for i in range(12 * 360)])
    roll(M1, at(0), at(12))
    return ids


def compress_hour(hour: int) -> dict[str, int]:
    with transaction.atomic(), connection.cursor() as cursor:
        return compressed.compress_range(cursor, M1, PART, at(hour), at(hour + 1))


def row_count(lo: dt.datetime = DAY_LO, hi: dt.datetime = DAY_HI) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {M1.table} WHERE bucket >= %s AND bucket < %s", [lo, hi])
        return int(cursor.fetchone()[0])


def chunks(series: list[int]) -> list[tuple[int, dt.datetime, dt.datetime, int]]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT series_id, first_bucket, last_bucket, buckets_count FROM {compressed.table(M1)} "
                       "WHERE series_id = ANY(%s) ORDER BY 1, 2", [series])
        return cursor.fetchall()


def answers(series: list[int]) -> dict[str, Any]:
    """What the read API's code path answers over the whole day: steps of several aggregates and
    percentiles, with the summary percentiles."""
    plan = Plan(tier="1m", step=60, start=DAY_LO, end=DAY_HI - dt.timedelta(microseconds=1))
    out = {}
    for agg in ("max", "min", "avg", "last", "sum", "p95"):
        answer = fetch(plan, series, agg, ["p50", "p99"])
        out[agg] = (answer.points, answer.summary)
    return out


def test_compressing_an_hour_moves_its_rows_into_chunks_that_read_back_bit_for_bit(org: Any) -> None:
    series = twelve_hours(org)
    finalise_rollups(DAY_HI)  # the API reads the 1m tier over the whole day (no raw stitched on)
    before_rows, before_api = tier_rows(M1, series), answers(series)
    with connection.cursor() as cursor:  # so an answer can only come from the tier's rows and chunks
        cursor.execute("DELETE FROM metrics_sample WHERE series_id = ANY(%s)", [series])
    assert compress_hour(3) == {"rows": 120, "buckets": 120, "series": 2}
    assert row_count(at(3), at(4)) == 0 and row_count() == 12 * 60 * 2 - 120
    assert chunks(series) == [(sid, at(3), at(4) - M1.width, 60) for sid in series]
    assert tier_rows(M1, series) == before_rows  # every column and sketch, through source_sql
    assert answers(series) == before_api  # through read.fetch, the API's code path


def test_coarser_tiers_rolled_over_half_chunks_half_rows_equal_those_rolled_from_rows(org: Any) -> None:
    series = twelve_hours(org, series=3)
    roll(M5, at(0), at(12))
    roll(H1, at(0), at(12))
    five, hourly = tier_rows(M5, series), tier_rows(H1, series)
    assert len(five) == 3 * 144 and five[0][8]  # sketches present (30 values a bucket)
    for hour in range(6):
        compress_hour(hour)
    assert row_count(at(0), at(6)) == 0 and row_count(at(6), at(12)) == 3 * 6 * 60
    with connection.cursor() as cursor:  # both coarser tiers recomputed from scratch over the mixed source
        cursor.execute(f"DELETE FROM {M5.table}")
        cursor.execute(f"DELETE FROM {H1.table}")
    roll(M5, at(0), at(12))
    roll(H1, at(0), at(12))
    assert tier_rows(M5, series) == five
    assert tier_rows(H1, series) == hourly
    assert [r[2:7] for r in five] == [r[2:7] for r in raw_stats("5m", series)]


def test_every_hour_chunk_is_folded_into_the_day_chunk_at_day_close(org: Any) -> None:
    """Several chunks per series plus rows: the old merge kept one earlier chunk per series (a dict by series
    id) and lost the other hours."""
    series = twelve_hours(org)
    before = tier_rows(M1, series)
    for hour in (0, 1, 2):
        compress_hour(hour)
    assert len(chunks(series)) == 6
    assert compress_day() == {"buckets": 2 * 720, "series": 2}
    assert PART not in partitions(M1)
    assert chunks(series) == [(sid, at(0), at(12) - M1.width, 720) for sid in series]
    assert tier_rows(M1, series) == before


def test_a_day_whose_every_hour_is_compressed_still_folds_into_one_chunk_per_series(org: Any) -> None:
    series = twelve_hours(org)
    before = tier_rows(M1, series)
    for hour in range(12):
        compress_hour(hour)
    assert row_count() == 0 and len(chunks(series)) == 24
    assert compress_day() == {"buckets": 2 * 720, "series": 2}
    assert chunks(series) == [(sid, at(0), at(12) - M1.width, 720) for sid in series]
    assert tier_rows(M1, series) == before


def test_the_pass_compresses_final_old_enough_hours_once_and_leaves_the_others(org: Any) -> None:
    series = twelve_hours(org)
    before = tier_rows(M1, series)
    finalise_rollups(at(5))  # hours ending by 5:00 - lateness are final: 0-3
    report = compression.compress_rollups(now=NOW, older_than=dt.timedelta(days=1))
    assert sorted(report.rollup_hours) == [f"{PART} 0{h}:00" for h in range(4)]
    assert "compressed 4 closed rollup hours, 480 rows" in report.summary()
    assert row_count(at(0), at(4)) == 0 and row_count(at(4), at(12)) == 2 * 8 * 60
    # A logged late range keeps its hour waiting too; the watermark past the day leaves only the age (13:00).
    finalise_rollups(DAY_HI)
    RollupInvalidation.objects.create(lo=at(6) + dt.timedelta(minutes=5), hi=at(6) + dt.timedelta(minutes=6))
    report = compression.compress_rollups(now=NOW, older_than=dt.timedelta(days=1))
    assert sorted(report.rollup_hours) == [f"{PART} {h:02}:00" for h in (4, 5, 7, 8, 9, 10, 11)]
    assert row_count(at(6), at(7)) == 2 * 60 and row_count() == 2 * 60
    assert tier_rows(M1, series) == before
    RollupInvalidation.objects.all().delete()
    compression.compress_rollups(now=NOW, older_than=dt.timedelta(days=1))
    assert row_count() == 0
    # Idempotent: a second pass finds nothing to do and changes no chunk.
    stored = chunks(series)
    again = compression.compress_rollups(now=NOW, older_than=dt.timedelta(days=1))
    assert again.rollup_hours == {} and chunks(series) == stored
    assert tier_rows(M1, series) == before


def test_hours_younger_than_the_setting_and_partitions_due_whole_are_left_alone(org: Any, settings: Any) -> None:
    series = twelve_hours(org)
    finalise_rollups(DAY_HI)
    settings.FIBERSTACK_ROLLUP_COMPRESS_HOURS_AFTER = 4
    report = compression.compress_rollups(now=at(12), older_than=dt.timedelta(days=1))
    assert sorted(report.rollup_hours) == [f"{PART} {h:02}:00" for h in range(8)]  # ended by 12:00 - 4 h
    assert row_count(at(0), at(8)) == 0 and row_count(at(8), at(12)) == 2 * 4 * 60
    # Two days on, the day is the whole-partition compression's: one chunk per series, no hour pass.
    finalise_rollups(DAY_HI + dt.timedelta(days=1))
    report = compression.compress_rollups(now=DAY_HI + dt.timedelta(days=2), older_than=dt.timedelta(days=1))
    assert report.rollup_hours == {} and PART in report.rollup_partitions
    assert chunks(series) == [(sid, at(0), at(12) - M1.width, 720) for sid in series]


def test_a_late_sample_into_a_compressed_hour_re_rolls_wins_and_the_next_pass_merges_it(org: Any) -> None:
    series = twelve_hours(org)
    roll(M5, at(0), at(12))
    finalise_rollups(DAY_HI)
    compression.compress_rollups(now=NOW, older_than=dt.timedelta(days=1))
    assert row_count() == 0
    late = at(2) + dt.timedelta(minutes=30, seconds=5)
    write(series[0], [(late, 5000.0)])  # into a compressed hour
    roll(M1, at(2), at(3))  # the invalidation log's re-roll: the hour is rows again
    assert row_count(at(2), at(3)) == 2 * 60
    one_m = tier_rows(M1, series)
    assert [r[2:7] for r in one_m] == [r[2:7] for r in raw_stats("1m", series)]
    assert next(r for r in one_m if r[0] == late.replace(second=0))[5] == 5000.0  # max: the row won
    roll(M5, at(2), at(3))  # reads 1m rows of that hour, chunks of none (rows hide them)
    assert [r[2:7] for r in tier_rows(M5, series)] == [r[2:7] for r in raw_stats("5m", series)]
    # The coarser tiers have the re-rolled range as dirt until their jobs merge it: not final yet.
    assert compression.compress_rollups(now=NOW, older_than=dt.timedelta(days=1)).rollup_hours == {}
    finalise_rollups(DAY_HI)
    report = compression.compress_rollups(now=NOW, older_than=dt.timedelta(days=1))
    assert list(report.rollup_hours) == [f"{PART} 02:00"]
    assert row_count() == 0
    assert [c for c in chunks(series) if c[1] == at(2)] == [(sid, at(2), at(3) - M1.width, 60) for sid in series]
    assert len(chunks(series)) == 2 * 12
    assert tier_rows(M1, series) == one_m


def test_late_re_rolled_rows_win_over_their_chunk_buckets_in_the_read_api_up_to_the_chunks_edges(org: Any) -> None:
    # Rows win inside the chunks' own bucket range (what the anti-join looks rows up in), its first and last
    # buckets included, for one series of two: the read API answers what raw says, each bucket once.
    series = twelve_hours(org)
    finalise_rollups(DAY_HI)
    compression.compress_rollups(now=NOW, older_than=dt.timedelta(days=1))
    assert row_count() == 0 and {c[1] for c in chunks(series)} == {at(h) for h in range(12)}
    late = [at(0) + dt.timedelta(seconds=5), at(2.5) + dt.timedelta(seconds=5), at(12) - dt.timedelta(seconds=5)]
    write(series[0], [(t, 5000.0 + k) for k, t in enumerate(late)])
    for hour in (0, 2, 11):
        roll(M1, at(hour), at(hour + 1))
    plan = Plan(tier="1m", step=60, start=at(0), end=at(12) - dt.timedelta(microseconds=1))
    for agg, column in (("max", 5), ("count", 2), ("sum", 3)):
        answer = fetch(plan, series, agg, [])
        for sid in series:
            expected = [[int(r[0].timestamp()), float(r[column])] for r in raw_stats("1m", [sid])]
            assert [[int(t), float(v)] for t, v in answer.points[sid]] == expected, (agg, sid)
    points = dict(fetch(plan, series, "max", []).points[series[0]])
    assert [points[int(t.replace(second=0).timestamp())] for t in late] == [5000.0, 5001.0, 5002.0]


def test_the_storage_report_counts_the_rows_left_and_the_hour_chunks(org: Any) -> None:
    series = twelve_hours(org)
    for hour in range(4):
        compress_hour(hour)
    lines = {line.label: line for line in build_report().lines}
    assert lines["1m"].rows == row_count() and lines["1m"].values == 2 * 8 * 360
    assert lines["1m compressed chunks"].rows == len(chunks(series)) == 8


def test_the_beat_task_and_the_command_compress_closed_hours(org: Any, capsys: pytest.CaptureFixture[str]) -> None:
    yesterday = timezone.now().date() - dt.timedelta(days=1)
    lo = dt.datetime.combine(yesterday, dt.time(), tzinfo=dt.UTC)
    name = rollup_storage.partition_name(M1, yesterday)
    sid = SeriesFactory(organization=org).id
    storage.ensure_partitions(days_ahead=0, today=yesterday + dt.timedelta(days=1))
    write(sid, [(lo + dt.timedelta(hours=1, seconds=10 * i), float(i)) for i in range(360)])
    write(sid, [(lo + dt.timedelta(hours=2, seconds=10 * i), float(i)) for i in range(360)])
    roll(M1, lo, lo + dt.timedelta(hours=3))
    before = tier_rows(M1, [sid], lo, lo + dt.timedelta(days=1))
    finalise_rollups(timezone.now())
    call_command("compress_raw", "--limit", "1")
    assert "compressed 1 closed rollup hours, 60 rows" in capsys.readouterr().out
    assert compress_chunks.apply().get().endswith("compressed 1 closed rollup hours, 60 rows")
    assert row_count(lo, lo + dt.timedelta(days=1)) == 0 and name in partitions(M1)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {compressed.table(M1)} WHERE series_id = %s", [sid])
        assert cursor.fetchone()[0] == 2
    assert tier_rows(M1, [sid], lo, lo + dt.timedelta(days=1)) == before


@pytest.mark.django_db(transaction=True)
def test_a_reader_between_its_chunk_lookup_and_its_rows_holds_the_hour_off_until_it_is_done(
        org: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A reader that looked chunks up (none yet) and has not read the rows keeps the parent's lock: the pass
    cannot commit the DELETE under it, gives up after ``ddl.READERS_WAIT`` (the hour stays rows, no chunk
    committed) and does the hour once the reader is done."""
    series = twelve_hours(org, series=1)
    finalise_rollups(DAY_HI)
    monkeypatch.setattr(ddl, "READERS_WAIT", "300ms")
    s = connection.settings_dict
    reader = psycopg.connect(host=s["HOST"], port=s["PORT"] or 5432, dbname=s["NAME"], user=s["USER"],
                             password=s["PASSWORD"])
    try:
        with reader.cursor() as cursor:
            sql, params, _ = compressed._chunk_query(M1, at(0), at(2), series, True)
            assert cursor.execute(sql, params).fetchall() == []  # the reader's lookup, in its transaction
            report = compression.compress_rollups(now=NOW, older_than=dt.timedelta(days=1))
            # (A due partition another test left behind may be busy too: the reader holds the whole tier.)
            assert report.rollup_hours == {} and f"{PART} 00:00" in report.busy
            assert "tables busy, left for the next run" in report.summary()
            # What the reader reads next is still there: the rows, as no chunk was committed.
            cursor.execute(f"SELECT count(*) FROM {M1.table} WHERE bucket < %s", [at(2)])
            assert cursor.fetchone()[0] == 120
        reader.commit()
        assert chunks(series) == []
        report = compression.compress_rollups(now=NOW, older_than=dt.timedelta(days=1))
        assert len(report.rollup_hours) == 12 and row_count() == 0
    finally:
        reader.close()
        forget(series)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("granted")
def test_the_app_role_compresses_closed_hours(org: Any) -> None:
    """The DML-only role (docs/database-roles.md) may take the tier's ACCESS EXCLUSIVE lock (it has DELETE)."""
    from tests.core.test_database_roles import django_as_app_role

    series = twelve_hours(org, series=1)
    finalise_rollups(DAY_HI)
    before = tier_rows(M1, series)
    try:
        with django_as_app_role():
            report = compression.compress_rollups(now=NOW, older_than=dt.timedelta(days=1))
            assert len(report.rollup_hours) == 12 and row_count() == 0 and len(chunks(series)) == 12
            assert tier_rows(M1, series) == before
    finally:
        forget(series)


def forget(series: list[int]) -> None:
    """Delete what a transactional test committed to tables that are no models (the flush leaves them)."""
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {compressed.table(M1)} WHERE series_id = ANY(%s)", [series])
        cursor.execute(f"DELETE FROM {M1.table} WHERE series_id = ANY(%s)", [series])
        cursor.execute("DELETE FROM metrics_sample WHERE series_id = ANY(%s)", [series])
