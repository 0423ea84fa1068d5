"""Schema-driven hostile input for the whole JSON API: schemathesis reads our OpenAPI schema (the one
/api/schema/ serves) and generates, for every operation it describes, requests that fit the schema and
requests that break it (wrong types, huge numbers, NUL bytes and lone surrogates, long strings, deep
nesting, malformed ids in paths, odd query parameters). Each is sent through the real WSGI stack as a
signed-in owner, and must get no 5xx, and every 4xx must be JSON with a message.

Every request runs inside a savepoint that is rolled back afterwards, so each example sees the same
world (tests/core/test_api_access.py's, which has an object behind every endpoint) and the run is
reproducible: fixed seed (derandomized), bounded examples, no example database."""

from __future__ import annotations

import os
import traceback
import uuid
from typing import Any

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import got_request_exception, request_finished, request_started
from django.db import close_old_connections, transaction
from django.test import Client
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from tests.core.test_api_access import World, world  # noqa: F401 (the fixture, reused)

pytestmark = pytest.mark.django_db

MAX_EXAMPLES = 12

#: The first path segment after /api/v1/ -> the world's object a `{public_id}` there names.
OBJECT_OF = {
    "alerts": "alert", "audit-events": "audit-event", "channels": "alert-channel",
    "contact-methods": "contact-method", "dashboards": "dashboard", "dependencies": "dependency",
    "escalation-group-routes": "escalation-group-route", "escalation-policies": "escalation-policy",
    "escalation-routes": "escalation-route", "group-escalations": "group-escalation", "hosts": "host",
    "integrations": "integration", "maintenance-windows": "maintenance-window", "members": "member",
    "rules": "alert-rule", "schedules": "schedule", "services": "service", "silences": "silence",
    "tokens": "token",
}


def _schema() -> dict[str, Any]:
    # The generator SpectacularAPIView uses; test_api_docs.py checks the served document.
    return SchemaGenerator().get_schema(request=None, public=True)


schema = schemathesis.openapi.from_dict(_schema())
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
                                max_examples=MAX_EXAMPLES, deterministic=True, database="none",
                                with_security_parameters=False)
# The coverage phase sends every boundary value of every field: hundreds of requests per operation, minutes
# for the API. FIBERSTACK_FUZZ_COVERAGE=1 turns it on for a deeper run by hand.
schema.config.phases.coverage.enabled = os.environ.get("FIBERSTACK_FUZZ_COVERAGE") == "1"


class _Handler(WSGIHandler):
    """Django's WSGI handler as the test client runs it: no CSRF check (a browser would send the token)."""

    def get_response(self, request: Any) -> Any:
        request._dont_enforce_csrf_checks = True
        return super().get_response(request)


@pytest.fixture
def app(world: World, owner: Any) -> Any:  # noqa: F811
    # Closing "old" connections at request boundaries would close the test's transaction (as the test client
    # knows, and switches it off the same way).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    client = Client()
    client.force_login(owner)
    handler = _Handler()
    handler.cookies = {name: morsel.value for name, morsel in client.cookies.items()}
    yield handler
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def _aim_at_the_world(case: Any, world: World) -> None:  # noqa: F811
    """A well-formed `{public_id}` names the world's object of that kind (a random UUID would only ever
    be a 404 and never reach the body's validation); malformed ones are left as generated."""
    params = case.path_parameters or {}
    kind = case.path.removeprefix("/api/v1/").split("/", 1)[0]
    if kind == "schedules" and "calendar-feeds" in case.path:
        kind = "calendar-feed"
    name = OBJECT_OF.get(kind, kind)
    for key, target in (("public_id", name), ("override_id", "override")):
        if _is_uuid(params.get(key)) and target in world.objects:
            params[key] = str(world.objects[target].public_id)


def _is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return isinstance(value, str)


def client_errors_are_json_with_a_message(ctx: Any, response: Any, case: Any) -> None:
    """The API's error contract: a 4xx is JSON (never an HTML page) and says what was wrong."""
    if not 400 <= response.status_code < 500 or case.method.upper() == "HEAD":  # HEAD answers have no body
        return
    content_type = (response.headers.get("content-type") or [""])[0]
    assert content_type.startswith("application/json"), (
        f"{response.status_code} answered {content_type!r}: {response.content[:300]!r}")
    body = response.json()
    assert isinstance(body, dict) and body and all(body.values()), f"{response.status_code} without a message: {body}"


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, derandomize=True, database=None, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.filter_too_much, HealthCheck.data_too_large])
def test_no_input_makes_the_api_fail_or_answer_html(case: Any, app: Any, world: World) -> None:  # noqa: F811
    _aim_at_the_world(case, world)
    errors: list[str] = []

    def keep(sender: Any, request: Any = None, **kwargs: Any) -> None:
        errors.append(traceback.format_exc())

    got_request_exception.connect(keep)
    atomic = transaction.atomic()
    # Marked like a TestCase block so that the services' durable atomic blocks may run inside it.
    atomic._from_testcase = True  # type: ignore[attr-defined]
    try:
        with atomic:
            response = case.call(app=app, cookies=app.cookies)
            transaction.set_rollback(True)
    finally:
        got_request_exception.disconnect(keep)
    try:
        case.validate_response(response, checks=[not_a_server_error, client_errors_are_json_with_a_message])
    except BaseException as exc:  # the failure (with a curl line to reproduce it) plus the server's traceback
        if errors:
            exc.add_note(errors[0])
        raise
    assert not errors, errors[0]
    # The owner may call every operation: a 401/403 means the run lost its session and tests nothing.
    # (Not for the coverage phase's probes of other methods: POST to a read path may be an ingest door that
    # wants a token, and OPTIONS is closed on viewsets until a view grants it.)
    if case.method.upper() == case.operation.method.upper():
        assert response.status_code not in (401, 403), response.content[:300]


def test_the_sweep_covers_every_api_operation() -> None:
    """The read APIs behind the ingest doors included (they were missing from the schema)."""
    operations = {f"{method.upper()} {path}" for path, item in _schema()["paths"].items() for method in item
                  if method != "parameters"}
    assert len(operations) >= 120
    assert {"GET /api/v1/metrics", "GET /api/v1/logs", "GET /api/v1/events", "GET /api/v1/series",
            "POST /api/v1/schedules/{public_id}/overrides/", "GET /api/v1/audit-events/"} <= operations
    assert {kind for operation in operations for kind in OBJECT_OF if f"/api/v1/{kind}/{{public_id}}" in operation} \
        == set(OBJECT_OF)
