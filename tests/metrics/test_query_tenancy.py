"""Tenancy of the read API: two organizations hold identical series (names, labels, host names); for
every matcher kind each endpoint answers only the caller's series, and every statement on
metrics_series -- subqueries included -- filters by organization_id."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.hosts.models import Host
from apps.metrics.read.catalogue import CATALOGUE
from apps.organizations.models import AgentToken
from tests.metrics.factories import SeriesFactory
from tests.metrics.rollup_helpers import write

pytestmark = pytest.mark.django_db

AT = timezone.now().replace(microsecond=0) - dt.timedelta(minutes=10)
SHAPES = [
    ("cpu", {"host": "web-1", "job": "node", "instance": "10.0.0.1:9100"}),
    ("cpu", {"host": "web-2", "job": "api", "instance": "10.0.0.2:9100"}),
    ("mem", {"host": "web-1", "job": "node"}),
    ("probe_latency_ms", {"node_id": "n1"}),
]

MATCHERS = [
    {"labels": 'job="node"'},
    {"labels": 'job!="api"'},
    {"labels": 'instance=~"10\\.0\\..*"'},
    {"labels": 'instance!~"10\\.0\\.0\\.2.*"'},
    {"labels": '__name__=~"c.u"'},
    {"labels": '__name__!~"cpu|mem"'},
    {"labels": 'instance=""'},
    {"name": "cpu"},
    {"host": "web-1"},
    {"match[]": ['cpu{job="node"}', 'mem{host=~"web-.*"}']},
    {"match[]": ['{__name__=~"m.*"}'], "labels": 'host!="web-2"'},
]


def populate(organization: Any, value: float) -> set[str]:
    """The identical catalogue in ``organization``, every sample ``value``; returns the series' public ids."""
    hosts = {name: Host.objects.create(organization=organization, name=name) for name in ("web-1", "web-2")}
    made = set()
    for name, labels in SHAPES:
        series = SeriesFactory(organization=organization, name=name, labels=labels, host=hosts.get(labels.get("host")))
        write(series.id, [(AT, value)])
        made.add(str(series.public_id))
    return made


@pytest.fixture
def tenants(org: Any, other_org: Any, make_token: Any) -> dict[str, Any]:
    CATALOGUE.clear()
    ours, theirs = populate(org, 1.0), populate(other_org, 2.0)
    return {"ours": ours, "theirs": theirs, "token": make_token(AgentToken.Scope.READ)[1],
            "their_token": make_token(AgentToken.Scope.READ, organization=other_org)[1]}


_KEYWORDS = r"(?:WHERE|LEFT|RIGHT|FULL|INNER|CROSS|JOIN|ORDER|GROUP|LIMIT|HAVING|UNION|WINDOW)\b"
_FROM_SERIES = re.compile(rf'FROM\s+"?metrics_series"?(?:\s+(?:AS\s+)?"?(?!{_KEYWORDS})(\w+)"?)?', re.I)


def assert_every_series_statement_is_scoped(queries: list[dict]) -> None:
    """Each ``FROM metrics_series [alias]`` must come with ``alias.organization_id =`` in the statement."""
    checked = 0
    for sql in (q["sql"] for q in queries):
        for alias in {m.group(1) or "metrics_series" for m in _FROM_SERIES.finditer(sql)}:
            froms = sum(1 for m in _FROM_SERIES.finditer(sql) if (m.group(1) or "metrics_series") == alias)
            scoped = len(re.findall(rf'"?{alias}"?\."?organization_id"?\s*=', sql))
            assert scoped >= froms, f"unscoped metrics_series ({alias}) in: {sql}"
            checked += 1
    assert checked, "no statement on metrics_series was captured"


def ids_of(path: str, body: dict) -> set[str]:
    items = body["results"] if path == "/api/v1/series" else body["series"]
    return {item["id"] for item in items}


@pytest.mark.parametrize("path", ["/api/v1/series", "/api/v1/metrics", "/api/v1/metrics/latest"])
@pytest.mark.parametrize("params", MATCHERS, ids=lambda p: " ".join(f"{k}={v}" for k, v in p.items()))
def test_each_matcher_answers_only_the_callers_series(tenants: dict, api_client: Any, path: str,
                                                      params: dict) -> None:
    for token, own, other in ((tenants["token"], tenants["ours"], tenants["theirs"]),
                              (tenants["their_token"], tenants["theirs"], tenants["ours"])):
        with CaptureQueriesContext(connection) as captured:
            response = api_client(token=token).get(path, params)
        assert response.status_code == 200, response.content
        found = ids_of(path, response.json())
        assert found, "the matcher should select some of the caller's series"
        assert found <= own and not found & other
        assert_every_series_statement_is_scoped(captured.captured_queries)


def test_values_come_from_the_callers_samples(tenants: dict, api_client: Any) -> None:
    for token, value in ((tenants["token"], 1.0), (tenants["their_token"], 2.0)):
        client = api_client(token=token)
        metrics = client.get("/api/v1/metrics", {"labels": 'job="node"'}).json()["series"]
        assert {p[1] for s in metrics for p in s["points"]} == {value}
        latest = client.get("/api/v1/metrics/latest", {"labels": 'job="node"'}).json()["series"]
        assert {s["value"] for s in latest} == {value}


def test_seed_endpoint_answers_from_the_callers_node(tenants: dict, api_client: Any) -> None:
    for token, value in ((tenants["token"], 1.0), (tenants["their_token"], 2.0)):
        with CaptureQueriesContext(connection) as captured:
            response = api_client(token=token).get("/api/metrics", {"node_id": "n1",
                                                                     "start": int(AT.timestamp()) - 60})
        assert response.status_code == 200, response.content
        body = response.json()
        assert [row["latency_ms"] for row in body["data"]] == [value]
        assert body["summary"]["avg_latency"] == value and body["summary"]["sample_count"] == 1
        assert_every_series_statement_is_scoped(captured.captured_queries)
