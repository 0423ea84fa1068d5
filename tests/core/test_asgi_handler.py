"""The ASGI handler production serves (apps/core/asgi_handler.py), through the real application: a request
hands over to its worker thread once for the middleware chain and the view (not once per middleware hook),
and what the middleware enforces for browser sessions -- organization scoping, the second factor, session
bookkeeping -- holds exactly as under the test client, while a token request pays none of it."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from asgiref import sync
from asgiref.testing import ApplicationCommunicator
from django.conf import settings
from django.core.signals import request_finished, request_started
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice

from apps.accounts.models import UserSession
from fiberstack.asgi import application
from tests.asgi import response_of

pytestmark = pytest.mark.django_db(transaction=True)


async def get(path: str, *, cookie: str = "", token: str = "") -> tuple[int, dict[bytes, bytes], bytes]:
    headers = [(b"host", b"localhost"), (b"user-agent", b"asgi-test")]
    if cookie:
        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()))
    if token:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    path, _, query = path.partition("?")
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": query.encode(), "root_path": "",
             "headers": headers, "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000)}
    communicator = ApplicationCommunicator(application, scope)
    await communicator.send_input({"type": "http.request", "body": b""})
    response = await response_of(communicator)
    await communicator.wait(timeout=5)
    return response


def session_of(user: Any) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


@pytest.fixture
def handovers(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Counts every switch between the event loop and a worker thread, by what was switched to."""
    counted: Counter[str] = Counter()
    to_thread, to_loop = sync.SyncToAsync.__call__, sync.AsyncToSync.__call__

    async def counting_to_thread(self: Any, *args: Any, **kwargs: Any) -> Any:
        counted[getattr(self.func, "__qualname__", "?")] += 1
        return await to_thread(self, *args, **kwargs)

    def counting_to_loop(self: Any, *args: Any, **kwargs: Any) -> Any:
        counted["to the loop: " + getattr(self.awaitable, "__qualname__", "?")] += 1
        return to_loop(self, *args, **kwargs)

    monkeypatch.setattr(sync.SyncToAsync, "__call__", counting_to_thread)
    monkeypatch.setattr(sync.AsyncToSync, "__call__", counting_to_loop)
    return counted


async def test_a_request_runs_its_middleware_and_view_in_one_hand_over_to_its_thread(handovers):
    status, headers, body = await get("/healthz")
    assert (status, json.loads(body)) == (200, {"status": "ok"})
    assert len(headers[b"X-Request-ID"]) == 32  # the outermost of our middleware ran
    assert headers[b"X-Frame-Options"] == b"DENY"  # and the innermost of Django's
    # Django's own handler switched eleven times: once per sync hook of every middleware in async mode.
    # Left: the request-started signal, the chain with the view, and the response's close().
    assert handovers == Counter({"Signal.asend.<locals>.sync_send": 1, "BaseHandler.get_response": 1,
                                 "HttpResponseBase.close": 1})


async def test_request_started_and_finished_are_each_sent_once_per_request():
    # close_old_connections hangs on them: the pooled connection goes back after every request.
    seen: list[tuple[str, Any]] = []

    def started(sender: Any, scope: Any = None, **kwargs: Any) -> None:
        seen.append(("started", scope["path"]))

    def finished(sender: Any, **kwargs: Any) -> None:
        seen.append(("finished", sender.__name__))

    request_started.connect(started)
    request_finished.connect(finished)
    try:
        assert (await get("/healthz"))[0] == 200
        assert (await get("/api/v1/no-such-endpoint"))[0] == 404
    finally:
        request_started.disconnect(started)
        request_finished.disconnect(finished)
    assert seen == [("started", "/healthz"), ("finished", "SyncChainASGIHandler"),
                    ("started", "/api/v1/no-such-endpoint"), ("finished", "SyncChainASGIHandler")]


@pytest.fixture
def outsider_session(org: Any, other_org_user: Any) -> str:
    return session_of(other_org_user)


async def test_a_non_member_session_gets_404_for_another_organizations_pages(outsider_session):
    status, _, _ = await get("/acme/", cookie=outsider_session)
    assert status == 404


@pytest.fixture
def unverified_session(owner: Any) -> str:
    """A password-only session of an owner who has an authenticator (asked for a code whatever the setting)."""
    TOTPDevice.objects.create(user=owner, name="Authenticator app", confirmed=True)
    return session_of(owner)


async def test_an_unverified_session_of_an_enrolled_user_is_stopped_at_pages_and_the_api(unverified_session):
    status, headers, _ = await get("/acme/", cookie=unverified_session)
    assert status == 302 and headers[b"Location"].startswith(b"/accounts/login/verify/?next=")
    status, _, body = await get("/api/v1/hosts", cookie=unverified_session)
    assert status == 403 and b"Two-factor verification is required" in body


@pytest.fixture
def viewer_session(member_ro: Any) -> str:
    return session_of(member_ro)


async def test_a_session_request_is_recorded_and_a_token_request_is_not(member_ro, viewer_session, read_token):
    cookie = viewer_session
    sessions = sync.sync_to_async(lambda: list(UserSession.objects.values_list("user_id", "session_id", "user_agent")))
    status, _, _ = await get("/acme/", cookie=cookie)
    assert status == 200
    assert await sessions() == [(member_ro.pk, cookie, "asgi-test")]
    status, _, body = await get("/api/v1/metrics?name=cpu", token=read_token)
    assert (status, json.loads(body)["series"]) == (200, [])
    assert len(await sessions()) == 1
