"""The OpenAPI schema and its docs page: served for signed-in users, with no CDN at run time."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.django_db


def test_schema_describes_the_api_and_agent_tokens(client, owner):
    client.force_login(owner)
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert "/api/v1/tokens" in "".join(schema["paths"])
    assert schema["components"]["securitySchemes"]["agentToken"]["scheme"] == "bearer"


def test_docs_page_loads_its_scripts_from_our_static_files(client, owner):
    client.force_login(owner)
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    script_sources = re.findall(r'src="([^"]+)"', html)
    assert script_sources, html
    assert all(src.startswith("/static/") for src in script_sources), script_sources


def test_schema_and_docs_require_sign_in(client):
    assert client.get("/api/schema/").status_code in {401, 403}
    assert client.get("/api/docs/").status_code in {401, 403}


@pytest.mark.parametrize(("path", "parameters"), [
    ("/api/v1/metrics", {"name", "labels", "match[]", "start", "end", "step", "agg", "tier", "percentiles"}),
    ("/api/v1/logs", {"q", "host", "level", "service", "program", "start", "end", "limit", "cursor"}),
    ("/api/v1/events", {"host", "kind", "level", "start", "end", "limit", "cursor"}),
    ("/api/v1/series", {"name", "host", "labels", "match[]", "cursor"}),
])
def test_schema_describes_the_read_apis_and_their_parameters(client, owner, path, parameters):
    # /metrics, /logs and /events are ingest doors whose GET is a DRF read view; they were missing.
    client.force_login(owner)
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    assert set(schema["paths"][path]) == {"get"}
    assert {p["name"] for p in schema["paths"][path]["get"]["parameters"]} >= parameters


def test_schema_describes_a_schedules_sub_resources_by_their_own_shapes(client, owner):
    # They were described as a schedule (request and response), so clients and generated tests sent schedule
    # bodies to the override endpoints; token.created_by and series.host may be null.
    client.force_login(owner)
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    paths, components = schema["paths"], schema["components"]["schemas"]

    def ref(operation: dict, status: str) -> str:
        return operation["responses"][status]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]

    overrides = paths["/api/v1/schedules/{public_id}/overrides/"]
    assert ref(paths["/api/v1/schedules/{public_id}/oncall/"]["get"], "200") == "ScheduleOnCall"
    assert ref(paths["/api/v1/schedules/{public_id}/shifts/"]["get"], "200") == "ScheduleShifts"
    assert ref(overrides["get"], "200") == "ScheduleOverrides"
    assert ref(overrides["post"], "201") == "Override"
    assert overrides["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/OverrideRequest")
    assert ref(paths["/api/v1/schedules/{public_id}/overrides/{override_id}/"]["patch"], "200") == "Override"
    assert components["AgentToken"]["properties"]["created_by"]["nullable"] is True
    assert components["Series"]["properties"]["host"]["nullable"] is True
