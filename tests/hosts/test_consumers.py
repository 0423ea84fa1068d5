"""The live hosts websocket, against the real Redis channel layer from settings: members receive their
organization's broadcasts; anonymous users and non-members are refused; organizations stay apart."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser
from django.test import Client

from apps.accounts.live import CLOSE_FORBIDDEN
from apps.hosts.live import broadcast_hosts_update
from apps.hosts.routing import websocket_urlpatterns

pytestmark = pytest.mark.django_db(transaction=True)

application = URLRouter(websocket_urlpatterns)


async def _connect(user, slug: str) -> tuple[WebsocketCommunicator, bool]:
    communicator = WebsocketCommunicator(application, f"/ws/{slug}/hosts/")
    communicator.scope["user"] = user
    connected, _ = await communicator.connect()
    return communicator, connected


async def _assert_refused(communicator: WebsocketCommunicator) -> None:
    message = await communicator.receive_output(timeout=2)
    assert message == {"type": "websocket.close", "code": CLOSE_FORBIDDEN}


async def test_member_receives_a_broadcast(org, member_ro):
    communicator, connected = await _connect(member_ro, org.slug)
    assert connected
    payload = {"hosts": [{"id": "h1", "name": "web-1", "status": "up", "last_seen_at": None}]}
    await sync_to_async(broadcast_hosts_update)(org.pk, payload)
    message = await communicator.receive_json_from(timeout=2)
    assert message == {"type": "hosts.update", **payload}
    await communicator.disconnect()


async def test_anonymous_is_refused(org):
    communicator, _ = await _connect(AnonymousUser(), org.slug)
    await _assert_refused(communicator)


async def test_non_member_is_refused(org, other_org_user):
    communicator, _ = await _connect(other_org_user, org.slug)
    await _assert_refused(communicator)


async def test_unknown_organization_is_refused_like_a_foreign_one(owner):
    communicator, _ = await _connect(owner, "no-such-org")
    await _assert_refused(communicator)


async def test_other_org_broadcast_is_not_received(org, other_org, owner, other_org_user):
    ours, _ = await _connect(owner, org.slug)
    theirs, _ = await _connect(other_org_user, other_org.slug)
    await sync_to_async(broadcast_hosts_update)(other_org.pk, {"hosts": [{"id": "theirs"}]})
    assert (await theirs.receive_json_from(timeout=2))["hosts"] == [{"id": "theirs"}]
    assert await ours.receive_nothing(timeout=0.3)
    await ours.disconnect()
    await theirs.disconnect()


async def test_session_cookie_authenticates_through_the_asgi_application(org, editor):
    from fiberstack.asgi import application as asgi_application

    client = Client()
    await sync_to_async(client.force_login)(editor)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    communicator = WebsocketCommunicator(asgi_application, f"/ws/{org.slug}/hosts/",
                                         headers=[(b"cookie", cookie), (b"origin", b"http://localhost")])
    connected, _ = await communicator.connect()
    assert connected
    await sync_to_async(broadcast_hosts_update)(org.pk, {"removed": ["x"]})
    assert await communicator.receive_json_from(timeout=2) == {"type": "hosts.update", "removed": ["x"]}
    await communicator.disconnect()


async def test_a_session_that_skipped_a_required_second_factor_is_refused(org, owner, settings):
    """An owner under enforced 2FA who signed in with the password only must not get live data."""
    from fiberstack.asgi import application as asgi_application

    settings.FIBERSTACK_REQUIRE_2FA_FOR_ADMINS = True
    client = Client()
    await sync_to_async(client.force_login)(owner)  # password-only session: not OTP-verified
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    communicator = WebsocketCommunicator(asgi_application, f"/ws/{org.slug}/hosts/",
                                         headers=[(b"cookie", cookie), (b"origin", b"http://localhost")])
    await communicator.connect()
    await _assert_refused(communicator)
