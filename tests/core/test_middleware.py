"""API clients never get an HTML error page: the database going away answers 503 + Retry-After (JSON for
agents and the API) instead of a 500, and an unrouted /api/ path a JSON 404.

The outages are real: the connection is pointed at a closed port, or its backend is terminated with
``pg_terminate_backend`` from a second connection, between creating the token and the request."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from django.db import connection
from django.test import Client

from apps.core.middleware import DATABASE_RETRY_AFTER_S
from tests.metrics.factories import post

pytestmark = pytest.mark.django_db(transaction=True)

INGEST = [
    ("/write", "cpu,host=a v=1", "text/plain"),
    ("/api/v1/metrics", '[{"name": "m", "value": 1}]', "application/json"),
    ("/api/v1/agents/web-1/metrics", '{"load1": 1}', "application/json"),
]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def database_down() -> Iterator[None]:
    """PostgreSQL refuses the connection for the duration of the test body."""
    port = connection.settings_dict["PORT"]
    host = connection.settings_dict["HOST"]
    connection.close()
    connection.settings_dict["HOST"], connection.settings_dict["PORT"] = "127.0.0.1", _closed_port()
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict["HOST"], connection.settings_dict["PORT"] = host, port


def assert_unavailable_json(response: Any) -> None:
    assert response.status_code == 503, response.content
    assert response["Content-Type"] == "application/json"
    assert response["Retry-After"] == str(DATABASE_RETRY_AFTER_S)
    assert response.json()["code"] == "unavailable"
    assert "database is unavailable" in response.json()["error"]


@pytest.mark.parametrize(("path", "body", "content_type"), INGEST)
def test_ingest_door_answers_json_503_when_the_database_refuses_connections(
    path: str, body: str, content_type: str, write_token: str, database_down: None
) -> None:
    assert_unavailable_json(post(path, body, token=write_token, content_type=content_type))


def test_ingest_door_answers_json_503_when_the_backend_is_terminated(write_token: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**params, autocommit=True) as other:
        assert other.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone()[0] is True
    try:
        assert_unavailable_json(post("/write", "cpu,host=a v=1", token=write_token))
    finally:
        connection.close()
    # The next request gets a fresh connection and is stored.
    assert post("/write", "cpu,host=a v=1", token=write_token).status_code == 204


@pytest.mark.parametrize("debug", [True, False])
@pytest.mark.parametrize("path", ["/api/v1/hosts", "/api/v1/metrics?name=m", "/api/v1/series",
                                  "/api/v1/metrics/latest?name=m"])
def test_read_api_with_a_token_answers_json_503_when_the_database_refuses_connections(
        path: str, debug: bool, read_token: str, settings: Any, database_down: None) -> None:
    """The token is looked up while DRF authenticates, before content negotiation: with DEBUG on (as
    `make run` serves) DRF's own error path then failed on the missing renderer and answered an HTML 500."""
    settings.DEBUG = debug
    client = Client(raise_request_exception=False)
    assert_unavailable_json(client.get(path, HTTP_AUTHORIZATION=f"Bearer {read_token}"))


def test_api_with_a_session_answers_json_503_when_the_session_cannot_be_loaded(owner: Any) -> None:
    # The session is read by a middleware before the view runs, so the error never reaches the view.
    client = Client(raise_request_exception=False)
    client.force_login(owner)
    port, host = connection.settings_dict["PORT"], connection.settings_dict["HOST"]
    connection.close()
    connection.settings_dict["HOST"], connection.settings_dict["PORT"] = "127.0.0.1", _closed_port()
    try:
        api = client.get("/api/v1/hosts/", HTTP_ACCEPT="application/json")
        page = client.get("/acme/", HTTP_ACCEPT="text/html,application/xhtml+xml")
    finally:
        connection.close()
        connection.settings_dict["HOST"], connection.settings_dict["PORT"] = host, port
    assert_unavailable_json(api)
    assert page.status_code == 503
    assert page["Content-Type"].startswith("text/plain")
    assert page["Retry-After"] == str(DATABASE_RETRY_AFTER_S)
    assert b"<html" not in page.content.lower()


def test_other_errors_still_propagate(write_token: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from apps.metrics import views

    def broken(*args: object, **kwargs: object) -> None:
        raise psycopg.DataError("a bug, not an outage")

    monkeypatch.setattr(views, "ingest", broken)
    with pytest.raises(psycopg.DataError):
        post("/write", "cpu,host=a v=1", token=write_token)


@pytest.mark.parametrize("path", ["/api/v1/agents//metrics", "/api/v1/agents/a/b/metrics", "/api/v1/nothing-here"])
def test_unrouted_api_paths_get_a_json_404(path: str, write_token: str) -> None:
    response = post(path, "{}", token=write_token, content_type="application/json")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_unrouted_pages_keep_the_html_404() -> None:
    response = Client().get("/no-such-org/no-such-page/", HTTP_ACCEPT="text/html")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
