"""Query cost caps applied in SQL: raw reads stop at the per-series and per-query caps before fetching,
and a refused query answers 400 naming the parameter, the cap and a step that fits."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.metrics.storage import TABLE
from tests.metrics.factories import SeriesFactory
from tests.metrics.rollup_helpers import write

pytestmark = pytest.mark.django_db

END = timezone.now().replace(microsecond=0) - dt.timedelta(minutes=5)
START = END - dt.timedelta(minutes=50)


@pytest.fixture
def dense(org: Any) -> list[Any]:
    """Three series with a sample every 2 s over 50 minutes: 1,501 points each."""
    made = [SeriesFactory(organization=org, name="dense", labels={"n": str(i)}) for i in range(3)]
    for series in made:
        write(series.id, [(START + dt.timedelta(seconds=2 * i), float(i)) for i in range(1501)])
    return made


def query(api_client: Any, token: str, **params: Any) -> Any:
    return api_client(token=token).get("/api/v1/metrics", {"name": "dense", "start": int(START.timestamp()),
                                                          "end": int(END.timestamp()), **params})


def sample_rows_read(sql: str, params: Any) -> int:
    """Rows the plan actually pulled out of the raw table (EXPLAIN ANALYZE of the captured statement)."""
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params)
        plan = cursor.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan

    def walk(node: dict) -> int:
        own = 0
        if node.get("Relation Name", "").startswith(TABLE):
            own = node["Actual Rows"] * node["Actual Loops"]
        return own + sum(walk(child) for child in node.get("Plans", []))

    return walk(plan[0]["Plan"])


def test_raw_points_over_the_per_series_cap_are_refused_naming_step(settings: Any, dense: Any, api_client: Any,
                                                                     read_token: str) -> None:
    settings.FIBERSTACK_QUERY_MAX_POINTS_PER_SERIES = 100
    response = query(api_client, read_token)
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["parameter"] == "step" and body["limit"] == 100
    assert "step" in body["detail"]
    # The suggested step is one the API accepts and that fits the cap.
    retry = query(api_client, read_token, step=body["suggested_step"])
    assert retry.status_code == 200, retry.content
    assert all(len(s["points"]) <= 100 for s in retry.json()["series"])


def test_raw_points_read_at_most_the_cap_from_postgres(settings: Any, dense: Any, api_client: Any,
                                                       read_token: str) -> None:
    settings.FIBERSTACK_QUERY_MAX_POINTS_PER_SERIES = 100
    with CaptureQueriesContext(connection) as captured:
        assert query(api_client, read_token).status_code == 400
    [raw_read] = [q["sql"] for q in captured.captured_queries if f"FROM {TABLE} " in q["sql"]]  # not _compressed
    # The captured text has the parameters inlined; re-run it under EXPLAIN ANALYZE.
    read = sample_rows_read(raw_read, None)
    assert 0 < read <= 3 * 101 + 10  # 4,503 rows exist; the lateral LIMIT stops every series at cap + 1


def test_raw_points_over_the_per_query_cap_are_refused(settings: Any, dense: Any, api_client: Any,
                                                       read_token: str) -> None:
    settings.FIBERSTACK_QUERY_MAX_POINTS = 2000  # each series fits its own cap (11,000), the three do not
    response = query(api_client, read_token)
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["parameter"] == "step" and body["limit"] == 2000
    retry = query(api_client, read_token, step=body["suggested_step"])
    assert retry.status_code == 200, retry.content
    assert sum(len(s["points"]) for s in retry.json()["series"]) <= 2000


def test_step_queries_over_the_per_query_cap_are_refused_with_a_step_that_fits(settings: Any, dense: Any,
                                                                               api_client: Any,
                                                                               read_token: str) -> None:
    settings.FIBERSTACK_QUERY_MAX_POINTS = 100
    response = query(api_client, read_token, step=10)  # 3 series x 301 buckets
    assert response.status_code == 400, response.content
    body = response.json()
    assert (body["parameter"], body["limit"]) == ("step", 100)
    assert body["suggested_step"] > 10
    retry = query(api_client, read_token, step=body["suggested_step"])
    assert retry.status_code == 200, retry.content


def test_steps_per_series_over_the_cap_are_refused_before_any_read(settings: Any, dense: Any, api_client: Any,
                                                                   read_token: str) -> None:
    settings.FIBERSTACK_QUERY_MAX_POINTS_PER_SERIES = 50
    with CaptureQueriesContext(connection) as captured:
        response = query(api_client, read_token, step=1)
    assert response.status_code == 400
    assert response.json()["suggested_step"] == 62  # 3,000 s over 49 intervals
    assert not [q for q in captured.captured_queries if f"FROM {TABLE}" in q["sql"]]


def test_within_the_caps_every_point_is_returned(dense: Any, api_client: Any, read_token: str) -> None:
    response = query(api_client, read_token)
    assert response.status_code == 200
    series = response.json()["series"]
    assert [len(s["points"]) for s in series] == [1501, 1501, 1501]
    points = series[0]["points"]
    assert points == sorted(points) and points[0][0] == START.timestamp()
    assert series[0]["summary"]["count"] == 1501


def test_seed_raw_over_the_cap_names_start(settings: Any, org: Any, api_client: Any, read_token: str) -> None:
    settings.FIBERSTACK_QUERY_MAX_POINTS_PER_SERIES = 10
    series = SeriesFactory(organization=org, name="probe_latency_ms", labels={"node_id": "n1"})
    write(series.id, [(START + dt.timedelta(minutes=i), 1.0) for i in range(20)])
    response = api_client(token=read_token).get("/api/metrics", {
        "node_id": "n1", "start": int(START.timestamp()), "end": int(END.timestamp())})
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["parameter"] == "start" and body["limit"] == 10
    assert "aggregation=hourly" in body["detail"]


@pytest.mark.parametrize("step", ["1e30", "99999999999999999999", "253402300801"])
def test_a_step_beyond_any_time_range_is_refused_naming_step(dense: Any, api_client: Any, read_token: str,
                                                             step: str) -> None:
    """A step PostgreSQL's interval cannot hold answered 400 blaming a "label matcher" with its SQL."""
    response = query(api_client, read_token, step=step)
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["parameter"] == "step", body
    assert "LINE" not in body["detail"] and "interval" not in body["detail"]


def test_the_largest_step_still_answers(dense: Any, api_client: Any, read_token: str) -> None:
    response = query(api_client, read_token, step="253402300800", agg="count")
    assert response.status_code == 200, response.content


@pytest.mark.parametrize(("path", "parameter", "params"), [
    ("/api/v1/metrics", "name", {"name": "dense\x00"}),
    ("/api/v1/metrics", "host", {"name": "dense", "host": "web\x00"}),
    ("/api/v1/metrics", "labels", {"name": "dense", "labels": 'n="\x00"'}),
    ("/api/v1/metrics", "match[]", {"match[]": 'dense{n="1\x00"}'}),
    ("/api/v1/metrics/latest", "name", {"name": "dense\x00"}),
    ("/api/v1/series", "host", {"host": "\x00"}),
])
def test_a_nul_in_a_name_host_or_matcher_is_refused_naming_the_parameter(
        dense: Any, api_client: Any, read_token: str, path: str, parameter: str, params: dict[str, str]) -> None:
    """PostgreSQL text cannot hold NUL: the statement failed and the reply blamed `labels` with its SQL."""
    response = api_client(token=read_token).get(path, params)
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["parameter"] == parameter, body
    assert "U+0000" in body["detail"] and "LINE" not in body["detail"]
