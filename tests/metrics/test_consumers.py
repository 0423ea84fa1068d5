"""The host page's live points websocket (apps.metrics.consumers, apps.metrics.live) through the project's
ASGI application with a real session cookie, against the real Redis channel layer: a member's socket
gets the newest point of each of the host's series after an ingest through the HTTP door, throttled and
coalesced per host; anonymous users, non-members, a host of another organization and a session that
skipped a required second factor are refused; revoking the session or removing the member closes it."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from apps.accounts import services as account_services
from apps.accounts.live import CLOSE_FORBIDDEN
from apps.accounts.models import UserSession
from apps.core import redis
from apps.metrics import live
from apps.metrics.models import Series
from apps.organizations import services as org_services
from apps.organizations.models import Membership
from tests.asgi import signed_in
from tests.hosts.factories import HostFactory
from tests.metrics.factories import post

pytestmark = pytest.mark.django_db(transaction=True)



async def _open(user: Any, slug: str, host: Any) -> WebsocketCommunicator:
    from fiberstack.asgi import application

    _, key = await sync_to_async(signed_in)(user)
    communicator = WebsocketCommunicator(application, live.host_points_path(slug, host.public_id),
                                         headers=[(b"cookie", f"sessionid={key}".encode()),
                                                  (b"origin", b"http://localhost")])
    communicator.session_key = key  # type: ignore[attr-defined]
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def _assert_refused(communicator: WebsocketCommunicator) -> None:
    assert await communicator.receive_output(timeout=2) == {"type": "websocket.close", "code": CLOSE_FORBIDDEN}


def _ingest(token: str, host: str, values: dict[str, float], at: float | None = None) -> None:
    """One agent push through the JSON door (the real view; its commit runs the ingest consumers)."""
    at = at or time.time()
    body = {"metrics": [{"host": host, "name": name, "value": value, "time": at} for name, value in values.items()]}
    response = post("/api/v1/metrics", json.dumps(body), token=token, content_type="application/json")
    assert response.status_code == 200, response.content


def _series_id(org: Any, host: Any, name: str) -> str:
    return str(Series.objects.get(organization=org, host=host, name=name).public_id)


@pytest.fixture
def web1(org: Any) -> Any:
    return HostFactory(organization=org, name="web-1")


async def test_a_member_gets_the_newest_point_per_series_after_an_ingest(org: Any, member_ro: Any, web1: Any,
                                                                         write_token: str) -> None:
    socket = await _open(member_ro, org.slug, web1)
    at = time.time()
    await sync_to_async(_ingest)(write_token, "web-1", {"cpu_usage_active": 42.5, "mem_used_percent": 61.0}, at)
    frame = await socket.receive_json_from(timeout=3)
    cpu = await sync_to_async(_series_id)(org, web1, "cpu_usage_active")
    mem = await sync_to_async(_series_id)(org, web1, "mem_used_percent")
    assert frame["type"] == "metrics.points"
    assert sorted(frame["points"], key=lambda p: p["v"]) == [
        {"id": cpu, "t": pytest.approx(at, abs=1e-3), "v": 42.5},
        {"id": mem, "t": pytest.approx(at, abs=1e-3), "v": 61.0}]
    await socket.disconnect()


async def test_points_of_another_host_are_not_sent(org: Any, member_ro: Any, web1: Any, write_token: str) -> None:
    socket = await _open(member_ro, org.slug, web1)
    await sync_to_async(_ingest)(write_token, "db-1", {"cpu_usage_active": 1.0})
    assert await socket.receive_nothing(timeout=0.5)
    await socket.disconnect()


async def test_a_burst_is_throttled_to_one_frame_per_interval_and_coalesced(
        org: Any, member_ro: Any, web1: Any, write_token: str, settings: Any) -> None:
    settings.FIBERSTACK_LIVE_POINTS_INTERVAL_MS = 700
    socket = await _open(member_ro, org.slug, web1)
    start = time.time()
    # The gate closes when the first push is sent, which is after this instant (measuring from the first
    # frame's arrival instead would count how late a loaded machine delivers it).
    before_first_push = time.monotonic()
    for i, value in enumerate((1.0, 2.0, 3.0, 4.0)):  # four pushes well inside one interval
        await sync_to_async(_ingest)(write_token, "web-1", {"cpu_usage_active": value}, start + i * 0.01)
    first = await socket.receive_json_from(timeout=2)
    assert [p["v"] for p in first["points"]] == [1.0]  # leading edge: at once
    trailing = await socket.receive_json_from(timeout=3)
    assert time.monotonic() - before_first_push >= 0.65  # not before the gate opened (700 ms after the first)
    assert [p["v"] for p in trailing["points"]] == [4.0]  # the newest of the three that waited, only
    assert await socket.receive_nothing(timeout=1.0)
    await socket.disconnect()


async def test_a_trailing_flush_that_finds_the_gate_taken_again_waits_for_it_and_still_sends(
        org: Any, member_ro: Any, web1: Any, write_token: str) -> None:
    """Another process may claim the gate between a push and its trailing flush: what is pending then
    waits for that gate too, and is not lost."""
    socket = await _open(member_ro, org.slug, web1)
    client = redis.client()
    gate = live._key("gate", web1.pk)
    await sync_to_async(client.set)(gate, 1, px=300)  # as if another process had just sent a frame
    start = time.monotonic()
    await sync_to_async(_ingest)(write_token, "web-1", {"cpu_usage_active": 7.0})
    await sync_to_async(client.set)(gate, 1, px=800)  # ...and then another one, before the trailing flush
    frame = await socket.receive_json_from(timeout=3)
    assert time.monotonic() - start >= 0.75
    assert [p["v"] for p in frame["points"]] == [7.0]
    await socket.disconnect()


async def test_nothing_is_queued_for_a_host_no_page_shows(org: Any, web1: Any, write_token: str) -> None:
    await sync_to_async(_ingest)(write_token, "web-1", {"cpu_usage_active": 5.0})
    pending = await sync_to_async(redis.client().exists)(live._key("pending", web1.pk))
    assert pending == 0


async def test_anonymous_is_refused(org: Any, web1: Any) -> None:
    from fiberstack.asgi import application

    communicator = WebsocketCommunicator(application, live.host_points_path(org.slug, web1.public_id),
                                         headers=[(b"origin", b"http://localhost")])
    await communicator.connect()
    await _assert_refused(communicator)


async def test_a_member_of_another_organization_is_refused(org: Any, web1: Any, other_org_user: Any) -> None:
    from fiberstack.asgi import application

    _, key = await sync_to_async(signed_in)(other_org_user)
    communicator = WebsocketCommunicator(application, live.host_points_path(org.slug, web1.public_id),
                                         headers=[(b"cookie", f"sessionid={key}".encode()),
                                                  (b"origin", b"http://localhost")])
    await communicator.connect()
    await _assert_refused(communicator)


async def test_another_organizations_host_under_ones_own_slug_is_refused(
        org: Any, other_org: Any, member_ro: Any) -> None:
    """Membership of the URL's organization is not enough: the host must be of that organization too."""
    from fiberstack.asgi import application

    theirs = await sync_to_async(HostFactory)(organization=other_org, name="web-1")
    _, key = await sync_to_async(signed_in)(member_ro)
    for host_id in (theirs.public_id, "00000000-0000-0000-0000-000000000000"):
        communicator = WebsocketCommunicator(application, f"/ws/{org.slug}/hosts/{host_id}/points/",
                                             headers=[(b"cookie", f"sessionid={key}".encode()),
                                                      (b"origin", b"http://localhost")])
        await communicator.connect()
        await _assert_refused(communicator)


async def test_a_session_that_skipped_a_required_second_factor_is_refused(org: Any, owner: Any, web1: Any,
                                                                          settings: Any) -> None:
    from fiberstack.asgi import application

    settings.FIBERSTACK_REQUIRE_2FA_FOR_ADMINS = True
    _, key = await sync_to_async(signed_in)(owner)  # password only: not OTP-verified
    communicator = WebsocketCommunicator(application, live.host_points_path(org.slug, web1.public_id),
                                         headers=[(b"cookie", f"sessionid={key}".encode()),
                                                  (b"origin", b"http://localhost")])
    await communicator.connect()
    await _assert_refused(communicator)


async def test_revoking_the_session_closes_the_socket(org: Any, member_ro: Any, web1: Any) -> None:
    socket = await _open(member_ro, org.slug, web1)
    user_session = await UserSession.objects.aget(session_id=socket.session_key)  # type: ignore[attr-defined]
    await sync_to_async(account_services.revoke_session)(user=member_ro, user_session=user_session)
    await _assert_refused(socket)


async def test_removing_the_member_closes_the_socket(org: Any, member_ro: Any, owner: Any, web1: Any) -> None:
    socket = await _open(member_ro, org.slug, web1)
    membership = await Membership.objects.aget(organization=org, user=member_ro)
    await sync_to_async(org_services.remove_member)(membership=membership, actor=owner)
    await _assert_refused(socket)
