"""Read API: GET /api/v1/series and GET /api/v1/metrics (raw tier)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from apps.metrics import storage
from apps.metrics.models import Series
from apps.organizations.models import AgentToken
from tests.metrics.factories import SeriesFactory

pytestmark = pytest.mark.django_db

BASE = timezone.now().replace(microsecond=0) - dt.timedelta(minutes=30)


def write(series: Series, points: list[tuple[float, float]]) -> None:
    """points: (seconds after BASE, value)."""
    base_us = int(BASE.timestamp()) * 1_000_000
    with connection.cursor() as cursor:
        storage.copy_samples(cursor, [base_us + int(s * 1_000_000) for s, _ in points], [series.id] * len(points),
                             [v for _, v in points])


@pytest.fixture
def node_series(org: Any) -> list[Series]:
    made = [
        SeriesFactory(organization=org, name="node_load1", labels={"job": "node", "instance": "10.0.0.1:9100"}),
        SeriesFactory(organization=org, name="node_load1", labels={"job": "node", "instance": "10.0.0.2:9100"}),
        SeriesFactory(organization=org, name="node_load1", labels={"job": "node", "instance": "192.168.1.1:9100"}),
        SeriesFactory(organization=org, name="up", labels={"job": "api"}),
    ]
    for index, series in enumerate(made):
        write(series, [(i * 10 + index, float(i * (index + 1))) for i in range(30)])
    return made


def names(response: Any) -> list[tuple[str, dict]]:
    return [(s["name"], s["labels"]) for s in response.json()["results"]]


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ('job="node"', 3),
        ('{job="node"}', 3),
        ('job!="node"', 1),
        ('job="node",instance=~"10\\..*"', 2),
        ('job="node",instance=~"10\\\\..*"', 2),
        ('instance!~"10\\..*"', 2),
        ('instance=""', 1),
        ('instance!=""', 3),
        ('__name__="up"', 1),
        ('__name__=~"node_.*"', 3),
    ],
)
def test_series_label_matchers(labels: str, expected: int, node_series: Any, api_client: Any,
                               read_token: str) -> None:
    response = api_client(token=read_token).get("/api/v1/series", {"labels": labels})
    assert response.status_code == 200, response.content
    assert len(response.json()["results"]) == expected


def test_series_match_selectors_are_ored(node_series: Any, api_client: Any, read_token: str) -> None:
    response = api_client(token=read_token).get(
        "/api/v1/series?match[]=up&match[]=node_load1{instance=~\"192.*\"}")
    assert sorted(n for n, _ in names(response)) == ["node_load1", "up"]


def test_series_filters_and_pagination(node_series: Any, api_client: Any, member_ro: Any) -> None:
    client = api_client(user=member_ro)
    page = client.get("/api/v1/series", {"name": "node_load1", "page_size": 2}).json()
    assert len(page["results"]) == 2
    rest = client.get(page["next"]).json()
    assert len(rest["results"]) == 1
    assert {"id", "name", "labels", "host", "type", "help", "unit", "created_at"} == set(rest["results"][0])


def test_series_host_filter(org: Any, api_client: Any, read_token: str) -> None:
    from apps.hosts.models import Host

    host = Host.objects.create(organization=org, name="db-1")
    SeriesFactory(organization=org, name="a", labels={"host": "db-1"}, host=host)
    SeriesFactory(organization=org, name="a", labels={"host": "db-2"})
    response = api_client(token=read_token).get("/api/v1/series", {"host": "db-1"})
    assert [r["host"] for r in response.json()["results"]] == ["db-1"]


def test_bad_matcher_is_400_naming_the_parameter(api_client: Any, read_token: str) -> None:
    for bad in ('job~"x"', 'job=~"("'):
        response = api_client(token=read_token).get("/api/v1/series", {"labels": bad})
        assert response.status_code == 400
        assert response.json()["parameter"] == "labels"


@pytest.mark.parametrize(("labels", "says"), [
    ('job=~"(node)-\\1"', "backreferences"),
    ('job!~"(?=no)node"', "lookarounds"),
    ('job=~"no(?<!x)de"', "lookarounds"),
])
def test_regexes_re2_refuses_are_400_naming_the_parameter(labels: str, says: str, node_series: Any, api_client: Any,
                                                           read_token: str) -> None:
    """Matchers are RE2, as in Prometheus; PostgreSQL alone would have run these."""
    for path in ("/api/v1/series", "/api/v1/metrics"):
        response = api_client(token=read_token).get(path, {"labels": labels})
        assert response.status_code == 400, response.content
        assert response.json()["parameter"] == "labels"
        assert says in response.json()["detail"] and "job" in response.json()["detail"]


def test_other_org_series_are_invisible(node_series: Any, api_client: Any, make_token: Any,
                                        other_org: Any, other_org_user: Any) -> None:
    _, theirs = make_token(AgentToken.Scope.READ, organization=other_org)
    assert api_client(token=theirs).get("/api/v1/series").json()["results"] == []
    assert api_client(user=other_org_user).get("/api/v1/metrics", {"name": "node_load1"}).json()["series"] == []
    # Asking for our organization by slug as an outsider: 404, not our data.
    assert api_client(user=other_org_user).get("/api/v1/series?org=acme").status_code == 404


def test_read_requires_authentication(api_client: Any) -> None:
    assert api_client().get("/api/v1/series").status_code == 401
    assert api_client().get("/api/v1/metrics").status_code == 401


def test_raw_points(node_series: Any, api_client: Any, read_token: str) -> None:
    response = api_client(token=read_token).get("/api/v1/metrics", {"name": "up"})
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["tier"] == "raw"
    [series] = data["series"]
    assert series["labels"] == {"job": "api"}
    assert len(series["points"]) == 30
    assert series["points"][0] == [BASE.timestamp() + 3, 0.0]
    assert series["points"][1] == [BASE.timestamp() + 13, 4.0]


def independent(series_id: int, agg_sql: str, step: int, start: dt.datetime, end: dt.datetime) -> list[list[float]]:
    """The same bucketing computed with date_bin, written independently of apps.metrics.read."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT extract(epoch FROM date_bin(make_interval(secs => %s), time, 'epoch'::timestamptz))::bigint b, "
            f"{agg_sql} FROM metrics_sample WHERE series_id = %s AND time BETWEEN %s AND %s GROUP BY b ORDER BY b",
            [step, series_id, start, end],
        )
        return [[int(b), float(v)] for b, v in cursor.fetchall()]


@pytest.mark.parametrize(
    ("agg", "sql"),
    [("avg", "avg(value)"), ("min", "min(value)"), ("max", "max(value)"), ("sum", "sum(value)"),
     ("count", "count(value)"), ("last", "(array_agg(value ORDER BY time DESC))[1]")],
)
def test_step_aggregations_match_sql(agg: str, sql: str, node_series: Any, api_client: Any, read_token: str) -> None:
    start = BASE - dt.timedelta(minutes=1)
    end = BASE + dt.timedelta(minutes=10)
    response = api_client(token=read_token).get("/api/v1/metrics", {
        "labels": 'job="node"', "step": "60", "agg": agg, "start": start.isoformat(), "end": int(end.timestamp()),
    })
    assert response.status_code == 200, response.content
    data = response.json()
    assert len(data["series"]) == 3
    by_id = {str(s.public_id): s.id for s in node_series}
    for series in data["series"]:
        expected = independent(by_id[series["id"]], sql, 60, start, end)
        assert [p[0] for p in series["points"]] == [p[0] for p in expected]
        assert [p[1] for p in series["points"]] == pytest.approx([p[1] for p in expected])
        assert expected


def test_defaults_cover_the_last_hour(node_series: Any, api_client: Any, read_token: str) -> None:
    data = api_client(token=read_token).get("/api/v1/metrics").json()
    assert data["end"] - data["start"] == pytest.approx(3600)
    assert len(data["series"]) == 4  # every series when nothing narrows the query


@pytest.mark.parametrize(
    ("params", "parameter"),
    [({"start": "yesterday"}, "start"), ({"end": "2026-13-01T00:00:00Z"}, "end"), ({"start": "nan"}, "start"),
     ({"start": "2026-11-21T10:00:00"}, "start"), ({"step": "0"}, "step"), ({"step": "abc"}, "step"),
     ({"agg": "median", "step": "60"}, "agg"), ({"start": "2000000000", "end": "1000000000"}, "start"),
     ({"labels": "job"}, "labels")],
)
def test_bad_parameters_are_400_naming_them(params: dict, parameter: str, api_client: Any, read_token: str) -> None:
    response = api_client(token=read_token).get("/api/v1/metrics", params)
    assert response.status_code == 400, response.content
    assert response.json()["parameter"] == parameter


def test_too_many_series_is_400(settings: Any, node_series: Any, api_client: Any, read_token: str) -> None:
    settings.FIBERSTACK_QUERY_MAX_SERIES = 2
    response = api_client(token=read_token).get("/api/v1/metrics")
    assert response.status_code == 400


def test_session_viewer_and_config_token_read_but_ingest_token_does_not(
        node_series: Any, api_client: Any, member_ro: Any, make_token: Any, write_token: str) -> None:
    assert api_client(user=member_ro).get("/api/v1/metrics", {"name": "up"}).status_code == 200
    assert api_client(token=make_token("config")[1]).get("/api/v1/metrics", {"name": "up"}).status_code == 200
    assert api_client(token=write_token).get("/api/v1/metrics", {"name": "up"}).status_code == 403
