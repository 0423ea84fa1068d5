"""Events: ``POST /api/v1/events`` (ingest tokens) and ``GET /api/v1/events`` (read tokens, members),
per-item errors, kinds, the host link, and organization isolation."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from apps.logs.services import record_host_event, record_host_events
from tests.hosts.factories import HostFactory

pytestmark = pytest.mark.django_db


def post_events(client: Client, token: str, body: Any) -> Any:
    return client.post("/api/v1/events", data=json.dumps(body), content_type="application/json",
                       HTTP_AUTHORIZATION=f"Bearer {token}")


def list_events(client: Client, token: str, **params: Any) -> Any:
    return client.get("/api/v1/events", params, HTTP_AUTHORIZATION=f"Bearer {token}")


def test_events_are_stored_listed_and_filtered(client: Client, org: Any, write_token: str, read_token: str) -> None:
    HostFactory(organization=org, name="web-1")
    response = post_events(client, write_token, [
        {"kind": "deploy", "title": "api v42", "host": "web-1", "message": "rolled out", "context": {"sha": "abc"}},
        {"kind": "node_down", "title": "web-1 down", "host": "web-1", "level": "crit"},
        {"kind": "bogus", "title": "x"},
        {"kind": "custom"},
    ])
    assert response.status_code == 400
    assert response.json()["accepted"] == 2
    assert [r["location"] for r in response.json()["rejected"]] == ["item 2", "item 3"]
    assert "title is required" in response.json()["rejected"][1]["reason"]
    events = list_events(client, read_token).json()["results"]
    assert [e["kind"] for e in events] == ["node_down", "deploy"]
    assert events[1]["context"] == {"sha": "abc"} and events[0]["level"] == "critical"
    assert [e["title"] for e in list_events(client, read_token, kind="deploy").json()["results"]] == ["api v42"]
    assert list_events(client, read_token, kind="nope").json()["parameter"] == "kind"


def test_code_records_host_events_through_the_service(client: Client, org: Any, read_token: str) -> None:
    record_host_event(organization_id=org.pk, kind="alert_firing", title="CPU high", host="db-1")
    assert list_events(client, read_token, host="db-1").json()["results"][0]["title"] == "CPU high"


def test_code_records_many_events_in_one_write(client: Client, org: Any, read_token: str) -> None:
    summary = record_host_events(organization_id=org.pk, source="alerts", events=[
        {"kind": "alert_firing", "title": f"cpu-{i} firing", "host": f"web-{i}", "level": "error",
         "context": {"rule": i}} for i in range(3)])
    assert summary.stored == 3
    found = list_events(client, read_token, kind="alert_firing").json()["results"]
    assert sorted(e["title"] for e in found) == ["cpu-0 firing", "cpu-1 firing", "cpu-2 firing"]
    assert {e["level"] for e in found} == {"error"}


def test_scopes_and_other_organizations(client: Client, org: Any, other_org: Any, make_token: Any,
                                        write_token: str, read_token: str) -> None:
    assert post_events(client, read_token, [{"title": "x"}]).status_code == 403
    assert list_events(client, write_token).status_code == 403
    post_events(client, write_token, [{"title": "acme only"}])
    _, other_read = make_token("read", organization=other_org)
    assert list_events(client, other_read).json()["results"] == []


def test_filters_of_the_other_endpoint_are_refused(client: Client, read_token: str) -> None:
    for name in ("q", "service", "program"):
        response = list_events(client, read_token, **{name: "x"})
        assert response.status_code == 400 and response.json()["parameter"] == name
    response = client.get("/api/v1/logs", {"kind": "deploy"}, HTTP_AUTHORIZATION=f"Bearer {read_token}")
    assert response.status_code == 400 and response.json()["parameter"] == "kind"
