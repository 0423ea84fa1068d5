"""FiberStack's own doors: the JSON batch, the probe push and the agent payload; hot tier after commit."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest

from apps.hosts.models import Host
from apps.metrics import hot
from apps.metrics.models import Series
from tests.metrics.factories import post, sample_count, samples_of

pytestmark = pytest.mark.django_db

NOW = time.time()


def test_metrics_batch_stores_values_labels_and_units(org: Any, write_token: str) -> None:
    body = [
        {"host": "web-1", "name": "http_requests", "value": 5, "time": NOW, "labels": {"status": "200"}},
        {"host": "web-1", "name": "disk_free", "value": 0.5, "time": NOW, "unit": "ratio"},
    ]
    response = post("/api/v1/metrics", json.dumps({"metrics": body}), token=write_token,
                    content_type="application/json")
    assert response.status_code == 200, response.content
    assert response.json() == {"accepted": 2, "rejected": [], "skipped": {}}
    requests = Series.objects.get(organization=org, name="http_requests")
    assert requests.labels == {"host": "web-1", "status": "200"}
    assert Series.objects.get(organization=org, name="disk_free").unit == "ratio"
    assert samples_of(requests)[0][1] == 5.0


def test_unit_change_updates_the_series(org: Any, write_token: str) -> None:
    for unit in ("bytes", "kibibytes"):
        post("/api/v1/metrics", json.dumps([{"name": "m", "value": 1, "unit": unit}]), token=write_token,
             content_type="application/json")
    assert Series.objects.get(organization=org, name="m").unit == "kibibytes"


def test_metrics_batch_partial_is_400_with_the_same_shape(org: Any, write_token: str) -> None:
    body = [{"name": "ok", "value": 1}, {"name": "bad", "value": "x"}, {"value": 2}]
    response = post("/api/v1/metrics", json.dumps(body), token=write_token, content_type="application/json")
    assert response.status_code == 400
    data = response.json()
    assert set(data) == {"accepted", "rejected", "skipped"}
    assert data["accepted"] == 1
    assert [r["location"] for r in data["rejected"]] == ["item 1, field 'value'", "item 2, field 'name'"]
    assert sample_count(org) == 1


def test_metrics_batch_not_json_is_400(write_token: str) -> None:
    response = post("/api/v1/metrics", b"[{", token=write_token, content_type="application/json")
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["error"]


def probe(**overrides: Any) -> dict[str, Any]:
    payload = {"node_id": str(uuid.uuid4()), "country": "DE", "region": "eu-central",
               "latency_ms": 12.5, "uptime_pct": 99.9, "packet_loss": 0.1,
               "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "metadata": {"isp": "x"}}
    payload.update(overrides)
    return payload


def test_probe_push_registers_the_host_with_country_and_region(org: Any, write_token: str) -> None:
    payload = probe()
    response = post("/api/push", json.dumps(payload), token=write_token, content_type="application/json")
    assert response.status_code == 200, response.content
    assert response.json()["accepted"] == 3
    host = Host.objects.get(organization=org, name=payload["node_id"])
    assert (host.country, host.region) == ("DE", "eu-central")
    latency = Series.objects.get(organization=org, name="probe_latency_ms")
    assert latency.host == host
    assert latency.unit == "ms"
    assert latency.labels == {"country": "DE", "node_id": payload["node_id"], "region": "eu-central"}


def test_probe_push_updates_region(org: Any, write_token: str) -> None:
    node = str(uuid.uuid4())
    post("/api/push", json.dumps(probe(node_id=node)), token=write_token, content_type="application/json")
    post("/api/push", json.dumps(probe(node_id=node, region="eu-west")), token=write_token,
         content_type="application/json")
    assert Host.objects.get(organization=org, name=node).region == "eu-west"


def test_probe_push_invalid_fields_are_named(org: Any, write_token: str) -> None:
    response = post("/api/push", json.dumps(probe(country="Germany", latency_ms=-1)), token=write_token,
                    content_type="application/json")
    assert response.status_code == 400
    fields = {r["location"] for r in response.json()["rejected"]}
    assert fields == {"field 'country'", "field 'latency_ms'"}
    assert sample_count(org) == 0


def test_agent_payload_flat_and_nested(org: Any, write_token: str) -> None:
    payload = {"timestamp": NOW, "load1": 0.5, "cpu": {"percent": 12.5, "per_core": [10.0, 15.0]},
               "memory": {"used": 1, "total": 2}, "os": "linux"}
    response = post("/api/v1/agents/db-1/metrics", json.dumps(payload), token=write_token,
                    content_type="application/json")
    assert response.status_code == 200, response.content
    assert response.json() == {"accepted": 6, "rejected": [], "skipped": {"non_numeric": 1}}
    core = Series.objects.get(organization=org, name="cpu_per_core", labels__index="1")
    assert core.labels == {"host": "db-1", "index": "1"}
    assert core.host.name == "db-1"


def test_agent_host_info_sets_and_updates_the_hosts_inventory(org: Any, other_org: Any, write_token: str,
                                                                django_capture_on_commit_callbacks: Any) -> None:
    theirs = Host.objects.create(organization=other_org, name="db-1", agent_version="9.9")
    payload = {"timestamp": NOW, "load1": 0.5,
               "host_info": {"agent_version": "1.2.0", "os": "linux", "hardware": {"cpu_logical": 8}}}
    with django_capture_on_commit_callbacks(execute=True):
        response = post("/api/v1/agents/db-1/metrics", json.dumps(payload), token=write_token,
                        content_type="application/json")
    assert response.status_code == 200, response.content
    assert response.json()["accepted"] == 1  # host_info is inventory, not metrics
    host = Host.objects.get(organization=org, name="db-1")
    assert (host.agent_version, host.hardware_info) == ("1.2.0", {"os": "linux", "cpu_logical": 8})
    assert not Series.objects.for_org(org).filter(name__startswith="host_info").exists()

    payload["host_info"] = {"agent_version": "1.3.0", "os": "linux", "hardware": {"cpu_logical": 16}}
    with django_capture_on_commit_callbacks(execute=True):
        assert post("/api/v1/agents/db-1/metrics", json.dumps(payload), token=write_token,
                    content_type="application/json").status_code == 200
    host.refresh_from_db()
    assert (host.agent_version, host.hardware_info) == ("1.3.0", {"os": "linux", "cpu_logical": 16})
    theirs.refresh_from_db()
    assert theirs.agent_version == "9.9"  # the token's organization only


@pytest.mark.parametrize("info", ["linux", {"agent_version": 3}, {"hardware": [1, 2]}])
def test_agent_host_info_that_is_not_usable_is_named_and_metrics_still_stored(
    info: Any, org: Any, write_token: str
) -> None:
    payload = {"timestamp": NOW, "load1": 0.5, "host_info": info}
    response = post("/api/v1/agents/db-1/metrics", json.dumps(payload), token=write_token,
                    content_type="application/json")
    assert response.status_code == 400
    assert [r["location"] for r in response.json()["rejected"]] == ["field 'host_info'"]
    assert sample_count(org) == 1
    assert Host.objects.get(organization=org, name="db-1").agent_version == ""


def test_agent_payload_not_an_object_is_400(write_token: str) -> None:
    response = post("/api/v1/agents/db-1/metrics", "[1]", token=write_token, content_type="application/json")
    assert response.status_code == 400


def test_auto_registration_off_names_unknown_hosts(org: Any, write_token: str) -> None:
    org.auto_register_hosts = False
    org.save()
    Host.objects.create(organization=org, name="known")
    response = post("/api/v1/metrics", json.dumps([{"host": "known", "name": "a", "value": 1},
                                                    {"host": "stranger", "name": "a", "value": 1}]),
                    token=write_token, content_type="application/json")
    assert response.status_code == 422
    assert response.json()["hosts"] == ["stranger"]
    assert sample_count(org) == 0
    ok = post("/api/v1/metrics", json.dumps([{"host": "known", "name": "a", "value": 1}]), token=write_token,
              content_type="application/json")
    assert ok.status_code == 200


def test_after_commit_hot_tier_and_last_seen(org: Any, write_token: str,
                                             django_capture_on_commit_callbacks: Any) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        post("/api/v1/metrics", json.dumps([{"host": "h1", "name": "t", "value": 1, "time": NOW - 10},
                                            {"host": "h1", "name": "t", "value": 2, "time": NOW}]),
             token=write_token, content_type="application/json")
    with django_capture_on_commit_callbacks(execute=True):  # older sample arrives late: latest must not regress
        post("/api/v1/metrics", json.dumps([{"host": "h1", "name": "t", "value": 0, "time": NOW - 20}]),
             token=write_token, content_type="application/json")
    series = Series.objects.get(organization=org, name="t")
    t, value = hot.latest_values(org.pk, [series.id])[series.id]
    assert value == 2.0
    assert abs(t - NOW) < 1e-3
    host = Host.objects.get(organization=org, name="h1")
    assert hot.latest_for_host(org.pk, host.pk) == {series.id: (t, value)}
    assert host.last_seen_at is not None


def test_redis_down_ingest_still_stores(settings: Any, org: Any, write_token: str,
                                        django_capture_on_commit_callbacks: Any) -> None:
    from apps.metrics.series import forget_local_cache

    forget_local_cache()
    caches = {**settings.CACHES}
    caches["default"] = {**caches["default"], "LOCATION": "redis://127.0.0.1:1/0"}
    settings.CACHES = caches
    with django_capture_on_commit_callbacks(execute=True):
        response = post("/api/v1/metrics", json.dumps([{"host": "h2", "name": "r", "value": 1}]),
                        token=write_token, content_type="application/json")
    assert response.status_code == 200, response.content
    assert sample_count(org) == 1
