"""The saved dashboards' live socket (apps.metrics.consumers.DashboardNamesConsumer, apps.metrics.live_dashboards)
through the project's ASGI application with a real session cookie, against the real Redis channel layer: a
member's socket gets a "new data for these metric names" notice after an ingest through the HTTP door,
throttled and coalesced per organization; an organization without an open dashboard queues nothing;
anonymous users, another organization's members and a session that skipped a required second factor are
refused; revoking the session or removing the member closes it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from apps.accounts import services as account_services
from apps.accounts.models import UserSession
from apps.core import redis
from apps.hosts.models import Host
from apps.metrics import live, live_dashboards
from apps.organizations import services as org_services
from apps.organizations.models import AgentToken, Membership
from tests.asgi import signed_in
from tests.metrics.test_consumers import _assert_refused, _ingest

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fresh_watch_cache() -> Iterator[None]:
    live._watched_cache.clear()
    yield
    live._watched_cache.clear()


async def _connect(user: Any | None, slug: str) -> WebsocketCommunicator:
    from fiberstack.asgi import application

    headers = [(b"origin", b"http://localhost")]
    key = ""
    if user is not None:
        _, key = await sync_to_async(signed_in)(user)
        headers.append((b"cookie", f"sessionid={key}".encode()))
    communicator = WebsocketCommunicator(application, live_dashboards.dashboards_live_path(slug), headers=headers)
    communicator.session_key = key  # type: ignore[attr-defined]
    connected, _ = await communicator.connect()
    assert connected
    return communicator


def _queued(organization_id: int) -> int:
    """How many of the organization's throttle keys exist in Redis (pending names, gate)."""
    throttle = live_dashboards.THROTTLE
    return int(redis.client().exists(throttle.key("pending", organization_id), throttle.key("gate", organization_id)))


async def test_a_member_gets_the_metric_names_of_an_ingest(org: Any, member_ro: Any, write_token: str) -> None:
    socket = await _connect(member_ro, org.slug)
    await sync_to_async(_ingest)(write_token, "web-1", {"cpu_usage_active": 42.5, "mem_used_percent": 61.0})
    frame = await socket.receive_json_from(timeout=3)
    assert frame == {"type": "metrics.names", "names": ["cpu_usage_active", "mem_used_percent"]}
    assert await socket.receive_nothing(timeout=0.5)
    await socket.disconnect()


async def test_a_burst_is_one_notice_at_once_then_one_trailing_notice_of_the_names_coalesced(
        org: Any, member_ro: Any, write_token: str, settings: Any) -> None:
    settings.FIBERSTACK_LIVE_DASHBOARD_INTERVAL_MS = 700
    socket = await _connect(member_ro, org.slug)
    for name in ("a_metric", "b_metric", "c_metric", "b_metric"):  # four pushes well inside one interval
        await sync_to_async(_ingest)(write_token, "web-1", {name: 1.0})
    first = await socket.receive_json_from(timeout=2)
    sent_at = time.monotonic()
    assert first["names"] == ["a_metric"]  # leading edge: at once
    trailing = await socket.receive_json_from(timeout=3)
    assert time.monotonic() - sent_at >= 0.5  # not before the gate opened (700 ms after the first notice)
    assert trailing["names"] == ["b_metric", "c_metric"]  # the three that waited, as one notice
    assert await socket.receive_nothing(timeout=1.0)
    await socket.disconnect()


async def test_nothing_is_queued_for_an_organization_without_an_open_dashboard(
        org: Any, other_org: Any, member_ro: Any, write_token: str, make_token: Any) -> None:
    await sync_to_async(_ingest)(write_token, "web-1", {"cpu_usage_active": 5.0})
    assert await sync_to_async(_queued)(org.pk) == 0
    # A dashboard open in one organization costs nothing to another's ingest, and tells it nothing.
    socket = await _connect(member_ro, org.slug)
    theirs = (await sync_to_async(make_token)(AgentToken.Scope.WRITE, organization=other_org))[1]
    await sync_to_async(_ingest)(theirs, "web-1", {"cpu_usage_active": 5.0})
    assert await sync_to_async(_queued)(other_org.pk) == 0
    assert await socket.receive_nothing(timeout=0.5)
    await socket.disconnect()


async def test_an_open_host_page_alone_does_not_queue_dashboard_notices(org: Any, write_token: str) -> None:
    """The host pages' watch set carries the dashboards' mark: a watched host alone does not queue notices."""
    await sync_to_async(_ingest)(write_token, "web-1", {"cpu_usage_active": 1.0})
    host = await Host.objects.aget(organization=org, name="web-1")
    await sync_to_async(live.watch_host)(org.pk, host.pk)
    await sync_to_async(_ingest)(write_token, "web-1", {"cpu_usage_active": 2.0})
    assert await sync_to_async(_queued)(org.pk) == 0
    assert (await sync_to_async(live.watched)(redis.client(), org.pk)) == live.Watched(frozenset({host.pk}), False)


async def test_anonymous_is_refused(org: Any) -> None:
    await _assert_refused(await _connect(None, org.slug))


async def test_a_member_of_another_organization_is_refused(org: Any, other_org_user: Any) -> None:
    await _assert_refused(await _connect(other_org_user, org.slug))


async def test_a_session_that_skipped_a_required_second_factor_is_refused(org: Any, owner: Any,
                                                                          settings: Any) -> None:
    settings.FIBERSTACK_REQUIRE_2FA_FOR_ADMINS = True
    await _assert_refused(await _connect(owner, org.slug))  # password only: not OTP-verified


async def test_revoking_the_session_closes_the_socket(org: Any, member_ro: Any) -> None:
    socket = await _connect(member_ro, org.slug)
    user_session = await UserSession.objects.aget(session_id=socket.session_key)  # type: ignore[attr-defined]
    await sync_to_async(account_services.revoke_session)(user=member_ro, user_session=user_session)
    await _assert_refused(socket)


async def test_removing_the_member_closes_the_socket(org: Any, member_ro: Any, owner: Any) -> None:
    socket = await _connect(member_ro, org.slug)
    membership = await Membership.objects.aget(organization=org, user=member_ro)
    await sync_to_async(org_services.remove_member)(membership=membership, actor=owner)
    await _assert_refused(socket)
