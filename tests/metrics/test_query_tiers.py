"""Tier choice and the tier-aware GET /api/v1/metrics: which tier answers, percentiles and summaries
against exact values, retention clamping, the per-series point cap, 400s naming the parameter, and
other-organization isolation."""

from __future__ import annotations

import datetime as dt
import math
import random
from typing import Any

import pytest
from django.test import override_settings
from django.utils import timezone

from apps.metrics.read import PERCENTILES, QueryError
from apps.metrics.read.plan import choose
from apps.metrics.rollups import jobs
from apps.metrics.rollups.models import RollupState
from apps.metrics.sketch import RELATIVE_ACCURACY
from tests.metrics.factories import SeriesFactory
from tests.metrics.rollup_helpers import write

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("hours_back", "span_hours", "step", "forced", "tier", "plan_step"),
    [
        (1, 1, None, None, "raw", None),           # short range without step: raw points
        (1, 1, 60, None, "1m", 60),                # coarsest tier whose bucket <= step
        (3, 3, 300, None, "5m", 300),
        (12, 12, 3600, None, "1h", 3600),
        (24 * 20, 24, 3600, None, "1h", 3600),
        (24 * 60, 24, 300, None, "5m", 300),       # 1m no longer covers start
        (24 * 100, 24, 300, None, "5m", 300),      # nothing fine enough covers start: the longest-kept of them
        (24 * 400, 24, 86400, None, "1d", 86400),
        (1, 1, 90, None, "raw", 90),               # 1m does not divide 90 s: raw (which covers) answers
        (24 * 10, 24, 90, None, "1m", 90),         # ... unless raw does not reach back: 1m, at 1m resolution
        (1, 1, None, "1h", "1h", 3600),            # forced tier
        (24 * 10, 24 * 10, None, None, "1h", 3600),  # long range without step: auto step
    ],
)
def test_tier_choice(org: Any, hours_back: int, span_hours: int, step: int | None, forced: str | None, tier: str,
                     plan_step: int | None) -> None:
    now = timezone.now()
    start = now - dt.timedelta(hours=hours_back)
    end = start + dt.timedelta(hours=span_hours)
    plan = choose(org, start, end, step, forced, now=now)
    assert (plan.tier, plan.step) == (tier, plan_step)


def test_longer_org_retention_changes_the_choice(org: Any) -> None:
    now = timezone.now()
    start = now - dt.timedelta(days=20)
    assert choose(org, start, now, None, "raw", now=now).start >= now - dt.timedelta(days=7, seconds=1)
    assert choose(org, start, start + dt.timedelta(hours=1), 60, None, now=now).tier == "1m"
    org.plan, org.retention_raw_days = "enterprise", 30
    assert choose(org, start, start + dt.timedelta(hours=1), None, None, now=now).tier == "raw"
    assert choose(org, start, now, None, "raw", now=now).start == start


def test_point_cap_names_step(org: Any) -> None:
    now = timezone.now()
    with pytest.raises(QueryError) as caught:
        choose(org, now - dt.timedelta(days=20), now, 60, None, now=now)
    assert caught.value.parameter == "step" and "11000" in caught.value.message


@pytest.fixture
def loaded(org: Any) -> dict[str, Any]:
    rng = random.Random(3)
    now = timezone.now().replace(second=0, microsecond=0)
    start = now - dt.timedelta(hours=2)
    a = SeriesFactory(organization=org, name="latency", labels={"host": "a"})
    b = SeriesFactory(organization=org, name="latency", labels={"host": "b"})
    values: dict[int, list[tuple[dt.datetime, float]]] = {}
    for s in (a, b):
        values[s.id] = [(start + dt.timedelta(seconds=5 * i), rng.lognormvariate(2, 1)) for i in range(1440)]
        write(s.id, values[s.id])
    RollupState.objects.create(tier="1m", watermark=start)  # skip the empty days before the data
    # Roll up to 20 minutes ago: the newest minutes must be stitched in from raw by the query.
    jobs.run_rollups(now=now - dt.timedelta(minutes=20))
    return {"a": a, "b": b, "values": values, "start": start, "end": now}


def _exact(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(math.ceil(q * len(ordered)), 1) - 1]


@pytest.mark.parametrize("agg", ["p50", "p95", "p99"])
def test_percentile_points_and_summary_within_bound(loaded: dict, api_client: Any, read_token: str, agg: str) -> None:
    for tier in ("raw", "1m", "5m", "1h"):
        _check_percentiles(loaded, api_client, read_token, tier, agg)


def _check_percentiles(loaded: dict, api_client: Any, read_token: str, tier: str, agg: str) -> None:
    step = 3600
    response = api_client(token=read_token).get("/api/v1/metrics", {
        "name": "latency", "labels": 'host="a"', "start": int(loaded["start"].timestamp()),
        "end": int(loaded["end"].timestamp()), "step": step, "agg": agg, "tier": tier, "percentiles": "p50,p99",
    })
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["tier"] == tier
    [series] = body["series"]
    values = loaded["values"][loaded["a"].id]
    q = PERCENTILES[agg]
    bound = 0 if tier == "raw" else RELATIVE_ACCURACY
    for t, got in series["points"]:
        inside = [v for when, v in values if t <= when.timestamp() < t + step]
        exact = _exact(inside, q)
        assert abs(got - exact) <= bound * abs(exact) + 1e-12
    summary = series["summary"]
    assert summary["count"] == len(values)
    values_ = [v for _, v in values]
    assert summary["avg"] == pytest.approx(sum(values_) / len(values_))
    assert summary["min"] == min(values_) and summary["max"] == max(values_)
    for p in ("p50", "p99", agg):
        exact = _exact(values_, PERCENTILES[p])
        assert abs(summary[p] - exact) <= bound * exact + 1e-12, p


def test_every_tier_answers_the_same_simple_aggregates(loaded: dict, api_client: Any, read_token: str) -> None:
    for agg in ("avg", "min", "max", "sum", "count", "last"):
        _check_same_answers(loaded, api_client, read_token, agg)


def _check_same_answers(loaded: dict, api_client: Any, read_token: str, agg: str) -> None:
    answers = {}
    for tier in ("raw", "1m", "5m", "1h"):
        response = api_client(token=read_token).get("/api/v1/metrics", {
            "name": "latency", "start": int(loaded["start"].timestamp()), "end": int(loaded["end"].timestamp()),
            "step": 3600, "agg": agg, "tier": tier,
        })
        assert response.status_code == 200, response.content
        answers[tier] = {s["labels"]["host"]: s["points"] for s in response.json()["series"]}
    for tier in ("1m", "5m", "1h"):
        for host, points in answers["raw"].items():
            assert [p[0] for p in answers[tier][host]] == [p[0] for p in points]
            assert [p[1] for p in answers[tier][host]] == pytest.approx([p[1] for p in points], rel=1e-9)


def test_reply_names_the_tier_chosen_from_step(loaded: dict, api_client: Any, read_token: str) -> None:
    response = api_client(token=read_token).get("/api/v1/metrics", {
        "name": "latency", "start": int(loaded["start"].timestamp()), "end": int(loaded["end"].timestamp()),
        "step": 300, "agg": "max",
    })
    body = response.json()
    assert body["tier"] == "5m" and body["step"] == 300
    assert all(s["summary"]["count"] == 1440 for s in body["series"])


@pytest.mark.parametrize(
    ("params", "parameter"),
    [({"agg": "p42"}, "agg"), ({"tier": "2m"}, "tier"), ({"percentiles": "p1"}, "percentiles"),
     ({"step": "1", "start": "0"}, "step"), ({"tier": "1h", "step": "60"}, "step")],
)
def test_bad_parameters_answer_400_naming_them(loaded: dict, api_client: Any, read_token: str, params: dict,
                                               parameter: str) -> None:
    response = api_client(token=read_token).get("/api/v1/metrics", {"name": "latency", **params})
    assert response.status_code == 400, response.content
    assert response.json()["parameter"] == parameter


@override_settings(FIBERSTACK_QUERY_MAX_POINTS_PER_SERIES=100)
def test_raw_points_over_the_cap_ask_for_a_step(loaded: dict, api_client: Any, read_token: str) -> None:
    response = api_client(token=read_token).get("/api/v1/metrics", {
        "name": "latency", "start": int(loaded["start"].timestamp()), "end": int(loaded["end"].timestamp())})
    assert response.status_code == 400 and response.json()["parameter"] == "step"


def test_queries_never_reach_past_the_org_retention(org: Any, api_client: Any, read_token: str) -> None:
    org.retention_1m_days = 1
    org.save()
    series = SeriesFactory(organization=org, name="old")
    now = timezone.now()
    old = (now - dt.timedelta(days=3)).replace(second=0, microsecond=0)
    from apps.metrics import storage

    storage.ensure_partitions(days_ahead=0, today=old.date())
    write(series.id, [(old, 1.0)])
    jobs.run_rollups(now=now)
    response = api_client(token=read_token).get("/api/v1/metrics", {
        "name": "old", "start": int(old.timestamp()) - 60, "end": int(old.timestamp()) + 60, "tier": "1m"})
    body = response.json()
    assert body["series"][0]["points"] == [] and body["start"] >= (now - dt.timedelta(days=1)).timestamp() - 5
    response = api_client(token=read_token).get("/api/v1/metrics", {
        "name": "old", "start": int(old.timestamp()) - 60, "end": int(old.timestamp()) + 60, "tier": "5m"})
    assert response.json()["series"][0]["points"] == [[int(old.timestamp()) // 300 * 300, 1.0]]


def test_other_org_gets_nothing(loaded: dict, api_client: Any, make_token: Any, other_org: Any) -> None:
    _, token = make_token("read", organization=other_org)
    response = api_client(token=token).get("/api/v1/metrics", {"name": "latency", "step": 300, "tier": "5m"})
    assert response.status_code == 200 and response.json()["series"] == []
