"""Request body limits in front of Django (apps/core/asgi_limits.py), through real ASGI calls: a declared
length over the limit is refused before the app reads anything, a chunked stream is cut where it
crosses the limit, bodies under the limit arrive intact, websockets pass through."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from asgiref.testing import ApplicationCommunicator
from django.urls import reverse

from apps.core.asgi_limits import RequestBodyLimit, body_limit_for
from fiberstack.asgi import application
from tests.asgi import response_of

pytestmark = pytest.mark.django_db(transaction=True)

MiB = 1024 * 1024


class RecordingApp:
    """An inner app that reads the whole body, as Django's handler does, and answers with its sha256."""

    def __init__(self) -> None:
        self.calls = 0
        self.messages: list[dict[str, Any]] = []
        self.scope: dict[str, Any] | None = None
        self.receive: Any = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.calls += 1
        self.scope, self.receive = scope, receive
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            self.messages.append(message)
            if message["type"] == "http.disconnect":
                return  # what Django does: RequestAborted, no response
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": hashlib.sha256(body).hexdigest().encode()})


def http_scope(path: str, *, length: int | None = None, method: str = "POST",
               headers: list[tuple[bytes, bytes]] | None = None) -> dict[str, Any]:
    all_headers = list(headers or [])
    if length is not None:
        all_headers.append((b"content-length", str(length).encode()))
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
            "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
            "headers": [(b"host", b"localhost"), *all_headers], "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000)}


@pytest.fixture
def small_limits(settings):
    settings.FIBERSTACK_MAX_REQUEST_BODY_BYTES = 1000
    settings.FIBERSTACK_INGEST_MAX_BODY_BYTES = 4000


async def test_a_declared_length_over_the_ingest_limit_gets_413_json_before_any_body_is_read():
    # The real application; no body is ever sent: the answer must come from the header alone.
    communicator = ApplicationCommunicator(application, http_scope("/api/v1/write", length=16 * MiB + 1))
    status, headers, body = await response_of(communicator)
    assert status == 413
    assert headers[b"content-type"] == b"application/json"
    assert json.loads(body) == {
        "error": f"The request body is larger than the limit of {16 * MiB} bytes (FIBERSTACK_INGEST_MAX_BODY_BYTES).",
        "code": "too_large", "limit": 16 * MiB,
    }
    await communicator.wait(timeout=5)


async def test_the_inner_app_is_not_called_for_an_oversized_declared_length(small_limits):
    inner = RecordingApp()
    communicator = ApplicationCommunicator(RequestBodyLimit(inner), http_scope("/accounts/login/", length=1001))
    status, headers, body = await response_of(communicator)
    assert (status, inner.calls) == (413, 0)
    assert headers[b"content-type"].startswith(b"text/plain")
    assert b"FIBERSTACK_MAX_REQUEST_BODY_BYTES" in body


async def test_a_page_accepts_what_an_ingest_door_accepts_only_up_to_its_own_limit(small_limits):
    for path, length, expected in [("/api/v1/hosts", 1001, 413), ("/api/v1/prom/write", 1001, 200),
                                   ("/api/v1/agents/web-1/metrics", 4000, 200), ("/write", 4001, 413)]:
        inner = RecordingApp()
        communicator = ApplicationCommunicator(RequestBodyLimit(inner), http_scope(path, length=length))
        if expected == 200:
            await communicator.send_input({"type": "http.request", "body": b"x" * length})
        status, headers, _ = await response_of(communicator)
        assert status == expected, path
        if expected == 413:
            assert headers[b"content-type"] == b"application/json", path


async def test_a_chunked_stream_over_the_limit_is_cut_with_413(small_limits):
    inner = RecordingApp()
    communicator = ApplicationCommunicator(RequestBodyLimit(inner), http_scope("/api/v1/metrics"))
    for _ in range(10):
        await communicator.send_input({"type": "http.request", "body": b"y" * 1000, "more_body": True})
    status, _, body = await response_of(communicator)
    assert status == 413
    assert json.loads(body)["limit"] == 4000
    # The inner app got the first 4000 bytes, then a disconnect instead of the chunk that crossed the limit.
    assert [m["type"] for m in inner.messages] == ["http.request"] * 4 + ["http.disconnect"]
    assert sum(len(m.get("body", b"")) for m in inner.messages) == 4000


async def test_a_chunked_stream_through_django_is_cut_with_413(small_limits):
    communicator = ApplicationCommunicator(application, http_scope("/accounts/login/"))
    for _ in range(3):
        await communicator.send_input({"type": "http.request", "body": b"u" * 400, "more_body": True})
    status, _, body = await response_of(communicator)
    assert status == 413 and b"FIBERSTACK_MAX_REQUEST_BODY_BYTES" in body
    await communicator.wait(timeout=5)


async def test_a_body_under_the_limit_arrives_intact_in_chunks(small_limits):
    payload = bytes(range(256)) * 15  # 3840 bytes, under the ingest limit
    inner = RecordingApp()
    communicator = ApplicationCommunicator(RequestBodyLimit(inner), http_scope("/api/v1/metrics", length=len(payload)))
    for offset in range(0, len(payload), 1000):
        chunk = payload[offset:offset + 1000]
        await communicator.send_input({"type": "http.request", "body": chunk,
                                       "more_body": offset + 1000 < len(payload)})
    status, _, body = await response_of(communicator)
    assert (status, body) == (200, hashlib.sha256(payload).hexdigest().encode())


async def test_an_ingest_push_under_the_limit_is_stored_through_the_real_application(org, write_token):
    payload = json.dumps([{"name": "cpu", "value": 1.5, "labels": {"host": "web-1"}}]).encode()
    scope = http_scope("/api/v1/metrics", length=len(payload), headers=[
        (b"authorization", f"Bearer {write_token}".encode()), (b"content-type", b"application/json")])
    communicator = ApplicationCommunicator(application, scope)
    await communicator.send_input({"type": "http.request", "body": payload})
    status, _, body = await response_of(communicator)
    assert status in (200, 204), body
    await communicator.wait(timeout=5)


async def test_websocket_scopes_pass_through_untouched(small_limits):
    inner = RecordingApp()
    scope = {"type": "websocket", "path": "/ws/acme/hosts/", "headers": [(b"content-length", b"999999")]}
    communicator = ApplicationCommunicator(RequestBodyLimit(inner), scope)
    await communicator.wait(timeout=5)
    assert inner.calls == 1 and inner.scope == scope
    assert inner.receive == communicator.input_queue.get  # the server's own receive, not a wrapper


def test_every_metrics_ingest_door_gets_the_ingest_limit():
    doors = [reverse("metrics-write"), reverse("metrics-prom-write"), reverse("metrics-collectd"),
             reverse("metrics"), reverse("metrics-agent", args=["web-1"]), reverse("influx-write"),
             reverse("influx-v2-write"), reverse("probe-push")]
    assert all(body_limit_for(path).ingest for path in doors), doors
    assert not any(body_limit_for(path).ingest for path in ["/api/v1/hosts", "/admin/", "/writes", "/api/v1/write/x"])
