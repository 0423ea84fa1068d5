"""Liveness and readiness probes against the real PostgreSQL and Redis."""

from __future__ import annotations

import pytest
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
def test_readyz_is_503_when_redis_does_not_answer(client):
    # A real refused connection (nothing listens on port 1), not a mock.
    unreachable = {"default": {**CACHES["default"], "LOCATION": "redis://127.0.0.1:1/0"}}
    with override_settings(CACHES=unreachable):
        response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["redis"]["ok"] is False
    assert body["checks"]["redis"]["error"]


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_probes_only_answer_get(client, path):
    assert client.post(path).status_code == 405
