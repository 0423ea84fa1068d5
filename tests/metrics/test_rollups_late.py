"""Late data and backfill reach every tier: ingest logs samples the lateness re-roll may miss (through
the real doors: influx line protocol and the JSON batch), the rollup task re-rolls them, and the read
API answers them from every tier; on-time batches log nothing; a concurrent log row is never lost."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from apps.metrics.rollup_tasks import rollup
from apps.metrics.rollups import invalidation, jobs
from apps.metrics.rollups.models import RollupInvalidation, RollupState
from apps.metrics.rollups.tiers import BY_NAME, TIERS
from tests.metrics.factories import post

pytestmark = pytest.mark.django_db

TIER_NAMES = [t.name for t in TIERS]
STEP_S = 10


def _caught_up() -> None:
    rollup.delay().get()
    assert all(lag is not None and lag < 180 for lag in jobs.lag_seconds().values())


def _post_hour(start: dt.datetime, write_token: str) -> None:
    """One hour of samples every 10 s: ``cpu_load`` through /write, ``probe_rtt`` through the JSON door."""
    times = [start + dt.timedelta(seconds=STEP_S * i) for i in range(3600 // STEP_S)]
    body = "\n".join(f"cpu,host=web-1 load={i % 7} {int(t.timestamp())}" for i, t in enumerate(times))
    response = post("/write?precision=s", body + "\n", token=write_token)
    assert response.status_code == 204, response.content
    items = [{"name": "probe_rtt", "host": "web-1", "value": 2.5, "time": t.timestamp()} for t in times]
    response = post("/api/v1/metrics", json.dumps(items), token=write_token, content_type="application/json")
    assert response.status_code == 200, response.content


def _tier_totals(client: Any, name: str, tier: str, start: dt.datetime, end: dt.datetime) -> tuple[float, float]:
    """(count, sum) of the series ``name`` as GET /api/v1/metrics answers them from ``tier``."""
    totals = []
    for agg in ("count", "sum"):
        response = client.get("/api/v1/metrics", {"name": name, "tier": tier, "agg": agg,
                                                  "start": start.isoformat(), "end": end.isoformat()})
        assert response.status_code == 200, response.content
        data = response.json()
        assert data["tier"] == tier
        [series] = data["series"]
        totals.append(sum(v for _, v in series["points"]))
    return totals[0], totals[1]


@pytest.mark.parametrize("age", [dt.timedelta(hours=3), dt.timedelta(days=6)], ids=["3h-old", "6d-old"])
def test_late_hour_reaches_every_tier_within_two_runs(age: dt.timedelta, org: Any, write_token: str,
                                                      read_token: str, api_client: Any) -> None:
    _caught_up()
    start = BY_NAME["1m"].floor(timezone.now() - age)
    _post_hour(start, write_token)
    assert RollupInvalidation.objects.exists()
    client = api_client(token=read_token)
    window = (start - dt.timedelta(days=1), timezone.now())
    expected = {"cpu_load": (360.0, float(sum(i % 7 for i in range(360)))), "probe_rtt": (360.0, 900.0)}
    assert _tier_totals(client, "cpu_load", "1m", *window) == (0.0, 0.0)  # the hole this work closes

    rollup.delay().get()
    rollup.delay().get()

    for tier in TIER_NAMES:
        for name, want in expected.items():
            assert _tier_totals(client, name, tier, *window) == want, (tier, name)
    lag = jobs.lag_seconds()
    assert all(seconds is not None and seconds < 180 for seconds in lag.values()), lag
    assert invalidation.pending() == {"ranges": 0, "oldest": None}


def test_on_time_batches_log_nothing(org: Any, write_token: str) -> None:
    now = int(timezone.now().timestamp())
    body = "\n".join(f"cpu,host=web-1 load=1 {now - s}" for s in range(0, 240, 10)) + "\n"
    assert post("/write?precision=s", body, token=write_token).status_code == 204
    assert not RollupInvalidation.objects.exists()


def test_late_minutes_are_logged_as_few_ranges() -> None:
    now_us = int(timezone.now().timestamp()) // 60 * 60 * 1_000_000
    minute = 60_000_000
    late = [now_us - 180 * minute + i * 10_000_000 for i in range(60)]  # 10 consecutive minutes
    late += [now_us - 160 * minute, now_us - 30 * 24 * 60 * minute]  # a near one (joined) and a far one
    on_time = [now_us - minute]
    with connection.cursor() as cursor:
        assert invalidation.record_late(cursor, [*late, *on_time], now_us=now_us) == 2
    got = sorted(RollupInvalidation.objects.values_list("lo", "hi"))
    origin = dt.datetime.fromtimestamp(now_us / 1e6, tz=dt.UTC)
    assert got == [
        (origin - dt.timedelta(days=30), origin - dt.timedelta(days=30) + dt.timedelta(minutes=1)),
        (origin - dt.timedelta(minutes=180), origin - dt.timedelta(minutes=159)),
    ]


def test_a_range_logged_during_a_step_is_kept_for_the_next() -> None:
    """Settling deletes only the rows the claim read: a row committed by a concurrent ingest after the
    claim (its samples possibly unseen by the step) survives for the next step."""
    tier = TIERS[0]
    watermark = tier.floor(timezone.now())
    first = watermark - dt.timedelta(hours=10)
    RollupInvalidation.objects.create(lo=first, hi=first + dt.timedelta(minutes=30))
    long = RollupInvalidation.objects.create(lo=first + dt.timedelta(minutes=20), hi=first + dt.timedelta(hours=9))
    # Within the lateness window of the watermark: the next run's re-roll covers it.
    ahead = RollupInvalidation.objects.create(lo=watermark - dt.timedelta(minutes=5),
                                              hi=watermark - dt.timedelta(minutes=4))
    claimed = invalidation.claim(tier, watermark)
    assert claimed is not None
    assert (claimed.lo, claimed.hi) == (first, first + tier.step_span)
    assert not RollupInvalidation.objects.filter(pk=ahead.pk).exists()
    concurrent = RollupInvalidation.objects.create(lo=first, hi=first + dt.timedelta(minutes=5))
    claimed.settle()
    left = {row.pk: (row.lo, row.hi) for row in RollupInvalidation.objects.all()}
    assert left == {long.pk: (first + tier.step_span, first + dt.timedelta(hours=9)),
                    concurrent.pk: (first, first + dt.timedelta(minutes=5))}


def test_a_week_of_backfill_is_consumed_in_bounded_steps(org: Any, write_token: str) -> None:
    _caught_up()
    start = BY_NAME["1m"].floor(timezone.now() - dt.timedelta(days=6, hours=20))
    body = "\n".join(f"cpu,host=web-1 load=1 {int((start + dt.timedelta(minutes=10 * i)).timestamp())}"
                     for i in range(6 * 24 * 6)) + "\n"  # every 10 minutes for 6 days
    assert post("/write?precision=s", body, token=write_token).status_code == 204
    runs = 0
    while RollupInvalidation.objects.exists():
        reports = jobs.run_rollups(budget_seconds=0)
        runs += 1
        assert reports[0].late_steps == 1  # one bounded step per run when the budget is spent
        assert runs < 40
    assert runs >= 6 * 24 // 6  # 6 h per step
    for _ in range(10):
        if all(r.caught_up for r in jobs.run_rollups(budget_seconds=0)):
            break
    with connection.cursor() as cursor:
        cursor.execute("SELECT sum(count) FROM metrics_rollup_1d")
        assert cursor.fetchone()[0] == 6 * 24 * 6
    assert RollupState.objects.get(tier="1d").dirty_from is None


def test_a_compact_late_batch_is_one_range() -> None:
    now_us = int(timezone.now().timestamp()) // 60 * 60 * 1_000_000
    times = [now_us - 3 * 3600 * 1_000_000 + i * 1_000_000 for i in range(600)]  # 10 minutes, 3 h ago
    with connection.cursor() as cursor:
        assert invalidation.record_late(cursor, list(reversed(times)), now_us=now_us) == 1
    origin = dt.datetime.fromtimestamp(now_us / 1e6, tz=dt.UTC)
    assert list(RollupInvalidation.objects.values_list("lo", "hi")) == [
        (origin - dt.timedelta(hours=3), origin - dt.timedelta(hours=3) + dt.timedelta(minutes=10))]


@pytest.mark.parametrize("as_array", [False, True])
def test_late_minutes_from_a_list_or_an_array_log_the_same_ranges(as_array: bool) -> None:
    """Ingest hands over a list of Python ints today and may hand over the COPY's numpy column: both give
    the same rows (the minute set path, with negative minutes floored like Python's //)."""
    import numpy as np

    now_us = int(timezone.now().timestamp()) // 60 * 60 * 1_000_000
    minute = 60_000_000
    times = [now_us - 600 * minute + 7, now_us - 599 * minute, now_us - 400 * minute, now_us, -minute - 1]
    with connection.cursor() as cursor:
        given = np.array(times, dtype=np.int64) if as_array else times
        assert invalidation.record_late(cursor, given, now_us=now_us) == 3
        assert invalidation.record_late(cursor, np.array([], dtype=np.int64) if as_array else [], now_us=now_us) == 0
    origin = dt.datetime.fromtimestamp(now_us / 1e6, tz=dt.UTC)
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    assert sorted(RollupInvalidation.objects.values_list("lo", "hi")) == [
        (epoch - dt.timedelta(minutes=2), epoch - dt.timedelta(minutes=1)),
        (origin - dt.timedelta(minutes=600), origin - dt.timedelta(minutes=598)),
        (origin - dt.timedelta(minutes=400), origin - dt.timedelta(minutes=399)),
    ]


def test_a_late_sample_between_on_time_ones_is_logged() -> None:
    """First and last samples on time make ingest take the cheap on-time check; it still sees the middle."""
    now_us = int(timezone.now().timestamp()) // 60 * 60 * 1_000_000
    late = now_us - 90 * 60_000_000
    with connection.cursor() as cursor:
        assert invalidation.record_late(cursor, [now_us, now_us - 1, now_us + 5], now_us=now_us) == 0
        assert invalidation.record_late(cursor, [now_us, late, now_us - 1], now_us=now_us) == 1
    origin = dt.datetime.fromtimestamp(late / 1e6, tz=dt.UTC)
    assert list(RollupInvalidation.objects.values_list("lo", "hi")) == [(origin, origin + dt.timedelta(minutes=1))]
