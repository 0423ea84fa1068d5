"""The one read side (apps.metrics.read.window): the same answers as the query API, pooled windows that
stitch rollup rows and the raw tail like per-series ones, tenancy of explicit ids, and no second copy of
the rollup + raw stitching anywhere else in the code."""

from __future__ import annotations

import datetime as dt
import statistics
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from apps.metrics import read
from apps.metrics.rollups import jobs
from apps.metrics.rollups.models import RollupState
from tests.metrics.factories import SeriesFactory
from tests.metrics.rollup_helpers import write

pytestmark = pytest.mark.django_db

APPS = Path(__file__).resolve().parents[2] / "apps"


@pytest.fixture
def loaded(org: Any, other_org: Any) -> dict[str, Any]:
    """Two series of one metric, a minute apart for two hours; rolled up to 20 minutes ago, so every
    rollup answer needs the raw tail; a series of another organization with the same name."""
    now = timezone.now().replace(second=0, microsecond=0)
    start = now - dt.timedelta(hours=2)
    a = SeriesFactory(organization=org, name="lat", labels={"host": "a"})
    b = SeriesFactory(organization=org, name="lat", labels={"host": "b"})
    theirs = SeriesFactory(organization=other_org, name="lat", labels={"host": "a"})
    values = {a.id: [float(i % 17) for i in range(120)], b.id: [float(100 + i % 5) for i in range(120)]}
    for sid, vs in values.items():
        write(sid, [(start + dt.timedelta(minutes=i, seconds=7), v) for i, v in enumerate(vs)])
    write(theirs.id, [(start + dt.timedelta(minutes=i, seconds=7), 1e6) for i in range(120)])
    RollupState.objects.create(tier="1m", watermark=start)
    jobs.run_rollups(now=now - dt.timedelta(minutes=20))
    return {"a": a, "b": b, "theirs": theirs, "values": values, "start": start, "end": now}


def test_window_answers_what_the_query_api_answers(loaded: dict, api_client: Any, read_token: str, org: Any) -> None:
    start, end = loaded["start"], loaded["end"]
    for tier in ("raw", "1m", "5m"):
        answer = read.window(org, read.Selector(name="lat"), start, end, step=600, agg="max", tier=tier)
        body = api_client(token=read_token).get("/api/v1/metrics", {
            "name": "lat", "start": start.timestamp(), "end": end.timestamp(), "step": 600, "agg": "max",
            "tier": tier}).json()
        assert answer.plan.tier == body["tier"] == tier
        assert answer.series_ids == [loaded["a"].id, loaded["b"].id]
        assert [answer.points[sid] for sid in answer.series_ids] == [s["points"] for s in body["series"]]


@pytest.mark.parametrize("tier", ["raw", "1m", "5m"])
def test_a_pooled_window_reads_every_selected_sample_once(loaded: dict, org: Any, tier: str) -> None:
    start, end = loaded["start"], loaded["end"]
    every = [v for vs in loaded["values"].values() for v in vs]
    counts = read.window(org, read.Selector(name="lat"), start, end, step=1200, agg="count", tier=tier, pooled=True)
    per_series = read.window(org, read.Selector(name="lat"), start, end, step=1200, agg="count", tier=tier)
    assert list(counts.points) == [read.POOLED]
    assert sum(c for _, c in counts.points[read.POOLED]) == len(every) == 240
    summed: dict[float, float] = {}
    for sid in per_series.series_ids:
        for t, c in per_series.points[sid]:
            summed[t] = summed.get(t, 0) + c
    assert dict(counts.points[read.POOLED]) == summed
    summary = read.window(org, read.Selector(name="lat"), start, end, step=1200, agg="avg", tier=tier,
                          pooled=True).summary[read.POOLED]
    assert summary["count"] == 240 and summary["min"] == 0.0 and summary["max"] == 104.0
    assert summary["avg"] == pytest.approx(statistics.fmean(every))


def test_a_pooled_window_needs_a_step(loaded: dict, org: Any) -> None:
    with pytest.raises(read.QueryError) as caught:
        read.window(org, read.Selector(name="lat"), loaded["start"], loaded["end"], tier="raw", pooled=True)
    assert caught.value.parameter == "step"


def test_explicit_ids_of_another_organization_read_nothing(loaded: dict, org: Any) -> None:
    ids = (loaded["theirs"].id, loaded["a"].id)
    answer = read.window(org, read.Selector(ids=ids), loaded["start"], loaded["end"], step=3600, agg="max")
    assert answer.series_ids == [loaded["a"].id]
    assert set(answer.points) == {loaded["a"].id}
    assert max(v for _, v in answer.points[loaded["a"].id]) == 16.0


def test_only_the_read_package_stitches_rollup_rows_and_raw_samples() -> None:
    """The watermark join lives in apps/metrics/read/fetch.py; the dashboards build no SQL of their own."""
    stitching = {str(path.relative_to(APPS)) for path in APPS.rglob("*.py")
                 if any(mark in path.read_text() for mark in ("%(wm)s", "FROM metrics_rollupstate"))}
    assert stitching == {"metrics/read/fetch.py"}
    for path in (APPS / "dashboards").rglob("*.py"):
        text = path.read_text()
        for forbidden in ("connection", "RAW_TABLE", ".table", "metrics_rollup", "metrics_sample"):
            assert forbidden not in text, (path.name, forbidden)


@pytest.mark.parametrize("tier", ["1m", "5m"])
def test_a_step_read_without_percentiles_answers_what_the_sketched_read_answers(loaded: dict, org: Any,
                                                                              tier: str) -> None:
    """Reads that want no percentile skip the sketches (stored and built from the raw tail); the count,
    sum, min, max and last of every step stay those of the full rollup rows."""
    from django.db import connection

    from apps.metrics.read.fetch import rollup_source

    ids = [loaded["a"].id, loaded["b"].id]
    answers = []
    for sketches in (True, False):
        source, params = rollup_source(tier, loaded["start"], loaded["end"], series_ids=ids, sketches=sketches)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT series_id, bucket, count, sum, min, max, last, "
                           f"sketch_keys IS NULL AND exact_values IS NULL "
                           f"FROM {source} AS r ORDER BY 1, 2", {**params, "ids": ids})
            answers.append(cursor.fetchall())
    with_sketches, without = answers
    assert [row[:7] for row in without] == [row[:7] for row in with_sketches]
    assert len(without) > 20
    assert all(row[7] for row in without) and not any(row[7] for row in with_sketches)
    avg = read.window(org, read.Selector(name="lat"), loaded["start"], loaded["end"], step=600, agg="avg", tier=tier)
    p50 = read.window(org, read.Selector(name="lat"), loaded["start"], loaded["end"], step=600, agg="p50", tier=tier)
    assert avg.summary == p50.summary
