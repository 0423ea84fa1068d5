"""Liveness and readiness probes against the real PostgreSQL and Redis."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import override_settings

from fiberstack.settings.base import CACHES


def test_healthz_answers_without_touching_dependencies(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_reports_database_and_redis_ok(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["redis"]["ok"] is True
    assert isinstance(body["details"], dict)


@pytest.mark.django_db
def test_readyz_reports_redis_down_as_degraded_not_unavailable(client):
    # A real refused connection (nothing listens on port 1), not a mock. Ingest and pages work without
    # Redis, so the process stays in the load balancer: 200, status "degraded", the reason in checks.
    unreachable = {"default": {**CACHES["default"], "LOCATION": "redis://127.0.0.1:1/0"}}
    with override_settings(CACHES=unreachable):
        response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["database"] == {**body["checks"]["database"], "ok": True, "required": True}
    assert body["checks"]["redis"]["ok"] is False and body["checks"]["redis"]["required"] is False
    assert "Connection" in body["checks"]["redis"]["error"]


@pytest.mark.django_db(transaction=True)
def test_readyz_is_503_when_the_database_does_not_answer(client):
    # The default connection re-opened against a port nothing listens on: a real refused connection.
    port = connection.settings_dict["PORT"]
    connection.close()
    connection.settings_dict["PORT"] = "1"
    try:
        response = client.get("/readyz")
    finally:
        connection.close()
        connection.settings_dict["PORT"] = port
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"]["ok"] is False and body["checks"]["database"]["error"]
    assert body["checks"]["redis"]["ok"] is True
    # The details (rollup lag...) need the database: not asked, so the 503 costs one connection attempt
    # (under `make run` each waited out the pool's 10 s timeout: 20 s before the 503).
    assert body["details"] == {"skipped": "the database is unavailable"}


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_probes_only_answer_get(client, path):
    assert client.post(path).status_code == 405
