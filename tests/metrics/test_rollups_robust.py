"""Rollups cannot be stopped by data: float8-extreme samples through the JSON door roll up in every tier
for every organization and read back as valid JSON; counts past 2**31; a series whose rows the database
refuses is quarantined (admin, /readyz) while everything else is rolled and the watermarks move on."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from apps.metrics.models import Series
from apps.metrics.rollup_tasks import rollup
from apps.metrics.rollups import jobs
from apps.metrics.rollups.models import RollupInvalidation, RollupQuarantine, RollupState
from apps.metrics.rollups.storage import ensure_range
from apps.metrics.rollups.sums import FLOAT8_MAX
from apps.metrics.rollups.tiers import BY_NAME, TIERS
from tests.metrics.factories import SeriesFactory, post
from tests.metrics.rollup_helpers import BASE, NOW, rows, write

pytestmark = pytest.mark.django_db

TIER_NAMES = [t.name for t in TIERS]


def _strict_json(content: bytes) -> Any:
    """json.loads refusing NaN/Infinity, which Python's parser otherwise accepts but JSON does not."""
    def refuse(name: str) -> None:
        raise AssertionError(f"invalid JSON constant {name}")

    return json.loads(content, parse_constant=refuse)


def _extreme_batch(minutes: list[dt.datetime]) -> list[dict[str, Any]]:
    items = []
    for minute in minutes:
        for second, sign in ((5, 1), (25, 1), (45, 1)):
            at = (minute + dt.timedelta(seconds=second)).timestamp()
            items.append({"name": "huge", "host": "h1", "value": sign * FLOAT8_MAX, "time": at})
            items.append({"name": "tiny", "host": "h1", "value": -FLOAT8_MAX, "time": at})
            items.append({"name": "mixed", "host": "h1", "value": FLOAT8_MAX if second != 25 else -FLOAT8_MAX,
                          "time": at})
    return items


def test_float8_extremes_roll_up_in_every_tier_and_read_back_as_json(
    org: Any, other_org: Any, make_token: Any, api_client: Any
) -> None:
    now = timezone.now()
    start = now.replace(second=0, microsecond=0) - dt.timedelta(minutes=8)
    minutes = [start + dt.timedelta(minutes=i) for i in range(5)]
    _, write_a = make_token()
    _, read_a = make_token(scope="read")
    _, write_b = make_token(organization=other_org)
    response = post("/api/v1/metrics", json.dumps({"metrics": _extreme_batch(minutes)}), token=write_a,
                    content_type="application/json")
    assert response.status_code == 200, response.content
    normal = [{"name": "huge", "host": "h1", "value": 2.0, "time": (m + dt.timedelta(seconds=s)).timestamp()}
              for m in minutes for s in (5, 25, 45)]
    assert post("/api/v1/metrics", json.dumps(normal), token=write_b,
                content_type="application/json").status_code == 200

    summary = rollup.delay().get()

    assert "quarantined" not in summary, summary
    for state in RollupState.objects.all():
        assert state.watermark is not None and state.watermark >= start + dt.timedelta(minutes=5), state.tier
        assert state.dirty_from is None, state.tier
    assert not RollupQuarantine.objects.exists()
    other = Series.objects.get(organization=other_org, name="huge")
    for tier in TIER_NAMES:
        assert sum(r[2] for r in rows(tier, [other.id])) == 15, tier
        assert sum(r[3] for r in rows(tier, [other.id])) == 30.0, tier
    huge = Series.objects.get(organization=org, name="huge")
    tiny = Series.objects.get(organization=org, name="tiny")
    for tier in TIER_NAMES:
        assert {r[3] for r in rows(tier, [huge.id])} == {FLOAT8_MAX}, tier  # saturated, not an error
        assert {r[3] for r in rows(tier, [tiny.id])} == {-FLOAT8_MAX}, tier
        assert sum(r[2] for r in rows(tier, [huge.id])) == 15, tier

    client = api_client(token=read_a)
    window = {"start": (start - dt.timedelta(days=1)).isoformat(), "end": now.isoformat()}
    for tier in ["raw", *TIER_NAMES]:
        for agg in ("avg", "sum", "count", "max", "p99"):
            params = {**window, "name": "huge", "tier": tier, "agg": agg}
            if tier in ("raw", "1m"):
                params["step"] = "60"
            response = client.get("/api/v1/metrics", params)
            assert response.status_code == 200, (tier, agg, response.content)
            data = _strict_json(response.content)
            [series] = data["series"]
            values = [v for _, v in series["points"]]
            if agg in ("avg", "sum", "max"):
                assert values and set(values) == {FLOAT8_MAX}, (tier, agg, values)
            if agg == "count":
                assert sum(values) == 15, tier
            assert series["summary"]["avg"] == FLOAT8_MAX and series["summary"]["count"] == 15, tier
    for name in ("tiny", "mixed"):
        response = client.get("/api/v1/metrics", {**window, "name": name, "tier": "raw"})
        assert response.status_code == 200, response.content
        _strict_json(response.content)
    mixed = _strict_json(client.get("/api/v1/metrics", {**window, "name": "mixed", "tier": "5m",
                                                          "agg": "sum"}).content)
    assert all(abs(v) <= FLOAT8_MAX for _, v in mixed["series"][0]["points"])


def test_counts_past_two_to_the_31_merge_into_coarser_tiers(org: Any) -> None:
    series = SeriesFactory(organization=org)
    bucket = BY_NAME["5m"].floor(BASE)
    ensure_range(BY_NAME["1m"], bucket, bucket + dt.timedelta(minutes=5))
    with connection.cursor() as cursor:
        for minute in range(2):
            cursor.execute(
                "INSERT INTO metrics_rollup_1m VALUES (%s, %s, %s, 1.0, 1.0, 1.0, 1.0, '{1}', '{1}')",
                [bucket + dt.timedelta(minutes=minute), series.id, 2_000_000_000],
            )
    RollupState.objects.create(tier="1m", watermark=NOW)
    RollupState.objects.create(tier="5m", dirty_from=bucket, dirty_to=bucket + dt.timedelta(minutes=2))
    jobs.run_rollups(now=NOW)
    for tier in ("5m", "1h", "1d"):
        assert [r[2] for r in rows(tier, [series.id])] == [4_000_000_000], tier


@pytest.fixture
def poisoned(org: Any) -> Any:
    """A series the 1m table refuses, through a real CHECK constraint (dropped with the test's rollback)."""
    series = SeriesFactory(organization=org)
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE metrics_rollup_1m ADD CONSTRAINT test_poison CHECK (series_id <> {series.id})")
    return series


def test_a_failing_series_is_quarantined_and_everything_else_rolls_on(org: Any, other_org: Any,
                                                                      poisoned: Any) -> None:
    healthy = [SeriesFactory(organization=org) for _ in range(4)] + [SeriesFactory(organization=other_org)]
    first = BASE + dt.timedelta(minutes=10)
    for series in [*healthy, poisoned]:
        write(series.id, [(first + dt.timedelta(seconds=20 * i), 1.0) for i in range(90)])  # 30 minutes

    reports = jobs.run_rollups(now=NOW)

    assert reports[0].quarantined == 1 and "1 series quarantined" in reports[0].summary()
    for state in RollupState.objects.all():
        assert state.watermark == NOW, state.tier
    for tier in TIER_NAMES:
        assert sum(r[2] for r in rows(tier, [s.id for s in healthy])) == 90 * len(healthy), tier
        assert rows(tier, [poisoned.id]) == [], tier
    [row] = RollupQuarantine.objects.all()
    assert (row.tier, row.series_id, row.attempts, row.resolved_at) == ("1m", poisoned.id, 1, None)
    assert (row.bucket_from, row.bucket_to) == (first, first + dt.timedelta(minutes=30))
    assert "test_poison" in row.error

    # Re-rolling the range (late data for it) fails again: the same row counts the attempt.
    RollupInvalidation.objects.create(lo=first, hi=first + dt.timedelta(minutes=30))
    jobs.run_rollups(now=NOW)
    row.refresh_from_db()
    assert row.attempts == 2 and row.resolved_at is None and RollupQuarantine.objects.count() == 1

    # Once the cause is gone, the next re-roll of the range resolves it and the series reaches every tier.
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE metrics_rollup_1m DROP CONSTRAINT test_poison")
    RollupInvalidation.objects.create(lo=first, hi=first + dt.timedelta(minutes=30))
    jobs.run_rollups(now=NOW)
    row.refresh_from_db()
    assert row.resolved_at is not None
    for tier in TIER_NAMES:
        assert sum(r[2] for r in rows(tier, [poisoned.id])) == 90, tier


def test_quarantine_shows_in_admin_and_readyz(org: Any, poisoned: Any, client: Any, admin_user: Any) -> None:
    write(poisoned.id, [(BASE + dt.timedelta(seconds=30 * i), 1.0) for i in range(10)])
    jobs.run_rollups(now=NOW)

    ready = client.get("/readyz").json()
    assert ready["details"]["rollup_quarantine"]["open"] == {"1m": 1}
    assert ready["details"]["rollup_quarantine"]["oldest_first_seen"] is not None

    client.force_login(admin_user)
    listing = client.get("/admin/metrics/rollupquarantine/")
    assert listing.status_code == 200
    assert poisoned.name.encode() in listing.content and b"test_poison" in listing.content
    assert org.name.encode() in listing.content
    row = RollupQuarantine.objects.get()
    assert client.get(f"/admin/metrics/rollupquarantine/{row.pk}/change/").status_code == 200
    assert client.get("/admin/metrics/rollupquarantine/add/").status_code == 403
    response = client.post(f"/admin/metrics/rollupquarantine/{row.pk}/change/", {"tier": "5m"})
    assert response.status_code == 403
    row.refresh_from_db()
    assert row.tier == "1m"


def test_errors_not_caused_by_data_still_fail_the_run(org: Any) -> None:
    """A full disk is not the data's fault: nothing is quarantined, the run fails (beat retries it)."""
    from django.db import OperationalError

    series = SeriesFactory(organization=org)
    write(series.id, [(BASE, 1.0)])
    with connection.cursor() as cursor:
        cursor.execute("CREATE FUNCTION pg_temp.test_disk_full() RETURNS trigger LANGUAGE plpgsql AS "
                       "$$ BEGIN RAISE EXCEPTION 'disk on fire' USING ERRCODE = '53100'; END $$")
        cursor.execute("CREATE TRIGGER test_disk_full BEFORE INSERT ON metrics_rollup_1m "
                       "FOR EACH ROW EXECUTE FUNCTION pg_temp.test_disk_full()")
    with pytest.raises(OperationalError, match="disk on fire"):
        jobs.run_rollups(now=NOW)
    assert not RollupQuarantine.objects.exists()
    assert RollupState.objects.get(tier="1m").watermark <= BASE  # stopped before the failing step


def test_a_failure_of_every_series_is_not_blamed_on_the_data(org: Any) -> None:
    """When no series succeeds alone the cause is not one series' data: the run fails, nothing is
    quarantined (quarantining every series would hide an outage)."""
    from django.db import IntegrityError

    for series in (SeriesFactory(organization=org), SeriesFactory(organization=org)):
        write(series.id, [(BASE, 1.0)])
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE metrics_rollup_1m ADD CONSTRAINT test_refuse_all CHECK (series_id < 0)")
    with pytest.raises(IntegrityError, match="test_refuse_all"):
        jobs.run_rollups(now=NOW)
    assert not RollupQuarantine.objects.exists()
