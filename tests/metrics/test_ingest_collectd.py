"""collectd write_http JSON door, replaying collectd 5.12's real bodies."""

from __future__ import annotations

import json
from typing import Any

import pytest

from apps.metrics.models import Series
from tests.metrics.factories import FIXTURES, fixture_bytes, fixture_headers, post, sample_count

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _wide_time_window(settings: Any) -> None:
    settings.FIBERSTACK_INGEST_MAX_PAST_S = 20 * 365 * 86400
    settings.FIBERSTACK_INGEST_MAX_FUTURE_S = 20 * 365 * 86400


@pytest.mark.parametrize("fixture", ["collectd_json_01", "collectd_json_02"])
def test_collectd_fixture_is_stored(fixture: str, org: Any, write_token: str) -> None:
    items = json.loads((FIXTURES / f"{fixture}.body").read_text())
    expected = sum(1 for item in items for value in item["values"] if value is not None)
    response = post("/api/v1/collectd", fixture_bytes(f"{fixture}.body"), basic=write_token,
                    **fixture_headers(f"{fixture}.headers.json"))
    assert response.status_code == 200, response.content
    assert response.json() == {"accepted": expected, "rejected": [], "skipped": {}}
    assert sample_count(org) == expected
    series = Series.objects.for_org(org)
    assert {s.host.name for s in series} == {"lab-peers-collectd"}
    assert all(s.labels["host"] == "lab-peers-collectd" for s in series)


def test_collectd_names_and_labels(org: Any, write_token: str) -> None:
    post("/api/v1/collectd", fixture_bytes("collectd_json_01.body"), basic=write_token,
         **fixture_headers("collectd_json_01.headers.json"))
    names = set(Series.objects.for_org(org).values_list("name", flat=True))
    assert {"collectd_load_shortterm", "collectd_load_midterm", "collectd_load_longterm", "collectd_memory"} <= names
    memory = Series.objects.get(organization=org, name="collectd_memory", labels__type_instance="used")
    assert memory.labels == {"host": "lab-peers-collectd", "type_instance": "used"}


def test_collectd_fixtures_twice_reuse_series(org: Any, write_token: str) -> None:
    counts = []
    for _ in range(2):
        post("/api/v1/collectd", fixture_bytes("collectd_json_02.body"), basic=write_token,
             **fixture_headers("collectd_json_02.headers.json"))
        counts.append(Series.objects.for_org(org).count())
    items = json.loads((FIXTURES / "collectd_json_02.body").read_text())
    assert sample_count(org) == sum(len(item["values"]) for item in items)  # a resent body counts once
    distinct = {(i["plugin"], i["plugin_instance"], i["type"], i["type_instance"], n)
                for i in items for n in i["dsnames"]}
    assert counts == [len(distinct), len(distinct)]


def test_collectd_partial_keeps_good_items(org: Any, write_token: str) -> None:
    items = json.loads((FIXTURES / "collectd_json_01.body").read_text())
    items.insert(1, {"values": [1], "host": "x"})
    response = post("/api/v1/collectd", json.dumps(items), token=write_token, content_type="application/json")
    assert response.status_code == 400
    data = response.json()
    assert set(data) == {"accepted", "rejected", "skipped"}
    assert data["rejected"][0]["location"].startswith("item 1")
    assert sample_count(org) == data["accepted"] == sum(len(item["values"]) for item in items if "plugin" in item)


def test_collectd_not_json_is_400(write_token: str) -> None:
    response = post("/api/v1/collectd", b"{nope", token=write_token, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
