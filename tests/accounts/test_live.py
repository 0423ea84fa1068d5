"""Live sockets end when access ends (apps.accounts.live, against the real Redis channel layer): revoking
the session, signing out, a password reset's "sign out everywhere" and removing the member close an open
socket with 4403 after commit; other sessions, other organizations and rolled-back changes leave it open;
a member of another organization is refused at the door."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import transaction

from apps.accounts import services as account_services
from apps.accounts.live import CLOSE_FORBIDDEN, CLOSE_UNSUPPORTED_DATA
from apps.accounts.models import UserSession
from apps.core.roles import Role
from apps.hosts.live import broadcast_hosts_update
from apps.organizations import services as org_services
from apps.organizations.models import Membership
from tests.asgi import signed_in
from tests.organizations.factories import MembershipFactory

pytestmark = pytest.mark.django_db(transaction=True)



async def _open(session_key: str, slug: str, page: str = "hosts") -> WebsocketCommunicator:
    from fiberstack.asgi import application

    communicator = WebsocketCommunicator(application, f"/ws/{slug}/{page}/",
                                         headers=[(b"cookie", f"sessionid={session_key}".encode()),
                                                  (b"origin", b"http://localhost")])
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def _assert_closed(communicator: WebsocketCommunicator) -> None:
    assert await communicator.receive_output(timeout=2) == {"type": "websocket.close", "code": CLOSE_FORBIDDEN}


async def _assert_open(communicator: WebsocketCommunicator, org: Any) -> None:
    """Still joined: a broadcast to its organization arrives."""
    await sync_to_async(broadcast_hosts_update)(org.pk, {"removed": ["probe"]})
    assert await communicator.receive_json_from(timeout=2) == {"type": "hosts.update", "removed": ["probe"]}


async def test_revoking_the_session_closes_its_socket_and_no_other(org: Any, member_ro: Any) -> None:
    _, doomed = await sync_to_async(signed_in)(member_ro)
    _, kept = await sync_to_async(signed_in)(member_ro)
    doomed_socket, kept_socket = await _open(doomed, org.slug), await _open(kept, org.slug)
    user_session = await UserSession.objects.aget(session_id=doomed)
    await sync_to_async(account_services.revoke_session)(user=member_ro, user_session=user_session)
    await _assert_closed(doomed_socket)
    await _assert_open(kept_socket, org)
    await kept_socket.disconnect()


async def test_revoking_other_sessions_closes_them_and_keeps_the_current_one(org: Any, member_ro: Any) -> None:
    _, current = await sync_to_async(signed_in)(member_ro)
    _, other = await sync_to_async(signed_in)(member_ro)
    current_socket, other_socket = await _open(current, org.slug), await _open(other, org.slug, "logs")
    await sync_to_async(account_services.revoke_other_sessions)(user=member_ro, keep_session_key=current)
    await _assert_closed(other_socket)  # every live page closes, the log tail as well as the hosts list
    await _assert_open(current_socket, org)
    await current_socket.disconnect()


async def test_password_reset_closes_the_other_sessions_sockets(org: Any, member_ro: Any) -> None:
    _, other = await sync_to_async(signed_in)(member_ro)
    socket = await _open(other, org.slug)
    await sync_to_async(account_services.end_sessions_after_password_reset)(user=member_ro, keep_session_key=None)
    await _assert_closed(socket)


async def test_signing_out_closes_the_sessions_sockets(org: Any, member_ro: Any) -> None:
    client, key = await sync_to_async(signed_in)(member_ro)
    socket = await _open(key, org.slug)
    response = await sync_to_async(client.post)("/accounts/logout/")
    assert response.status_code in (200, 302)
    await _assert_closed(socket)


async def test_removing_the_member_closes_their_sockets_of_that_organization_only(
        org: Any, other_org: Any, member_ro: Any, owner: Any) -> None:
    await sync_to_async(MembershipFactory)(organization=other_org, user=member_ro, role=Role.VIEWER)
    _, key = await sync_to_async(signed_in)(member_ro)
    ours, theirs = await _open(key, org.slug), await _open(key, other_org.slug)
    membership = await Membership.objects.aget(organization=org, user=member_ro)
    await sync_to_async(org_services.remove_member)(membership=membership, actor=owner)
    await _assert_closed(ours)
    await _assert_open(theirs, other_org)
    await theirs.disconnect()
    # And the door stays shut for the removed member.
    from fiberstack.asgi import application

    again = WebsocketCommunicator(application, f"/ws/{org.slug}/hosts/",
                                  headers=[(b"cookie", f"sessionid={key}".encode()), (b"origin", b"http://localhost")])
    await again.connect()
    await _assert_closed(again)


async def test_a_removal_that_rolls_back_closes_nothing(org: Any, member_ro: Any, owner: Any) -> None:
    _, key = await sync_to_async(signed_in)(member_ro)
    socket = await _open(key, org.slug)

    def remove_then_fail() -> None:
        with pytest.raises(RuntimeError), transaction.atomic():
            org_services.remove_member(membership=Membership.objects.get(organization=org, user=member_ro),
                                       actor=owner)
            raise RuntimeError("rolled back")

    await sync_to_async(remove_then_fail)()
    assert await socket.receive_nothing(timeout=0.3)
    await _assert_open(socket, org)
    await socket.disconnect()


async def test_a_member_of_another_organization_is_refused(org: Any, other_org_user: Any) -> None:
    from fiberstack.asgi import application

    _, key = await sync_to_async(signed_in)(other_org_user)
    communicator = WebsocketCommunicator(application, f"/ws/{org.slug}/hosts/",
                                         headers=[(b"cookie", f"sessionid={key}".encode()),
                                                  (b"origin", b"http://localhost")])
    await communicator.connect()
    await _assert_closed(communicator)


@pytest.mark.parametrize("frame", [{"text_data": "not json"}, {"bytes_data": b"\xff"},
                                   {"text_data": "[" * 100_000}, {"text_data": '{"type": "live.close"}'}])
async def test_a_frame_from_the_browser_closes_the_one_way_socket_with_1003(org: Any, member_ro: Any,
                                                                           frame: dict[str, Any]) -> None:
    """Non-JSON text, a binary frame and deep nesting raised in the JSON decoding (the consumer crashed);
    a frame naming a handler must not run it."""
    _, key = await sync_to_async(signed_in)(member_ro)
    socket = await _open(key, org.slug)
    await socket.send_to(**frame)
    assert await socket.receive_output(timeout=2) == {"type": "websocket.close", "code": CLOSE_UNSUPPORTED_DATA}
    await socket.disconnect()
