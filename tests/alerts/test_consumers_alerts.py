"""The live alerts websocket, against the real Redis channel layer: members receive their organization's
"alerts.update" broadcasts; anonymous users and other organizations' members are refused."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser
from django.test import Client

from apps.accounts.live import CLOSE_FORBIDDEN
from apps.alerts.live import broadcast_alerts_update
from apps.alerts.routing import websocket_urlpatterns

pytestmark = pytest.mark.django_db(transaction=True)

application = URLRouter(websocket_urlpatterns)


async def _connect(user, slug: str) -> tuple[WebsocketCommunicator, bool]:
    communicator = WebsocketCommunicator(application, f"/ws/{slug}/alerts/")
    communicator.scope["user"] = user
    connected, _ = await communicator.connect()
    return communicator, connected


async def _assert_refused(communicator: WebsocketCommunicator) -> None:
    assert await communicator.receive_output(timeout=2) == {"type": "websocket.close", "code": CLOSE_FORBIDDEN}


async def test_member_receives_a_broadcast(org, member_ro):
    communicator, connected = await _connect(member_ro, org.slug)
    assert connected
    await sync_to_async(broadcast_alerts_update)(org.pk, [{"id": "a1", "state": "firing"}])
    assert await communicator.receive_json_from(timeout=2) == {"type": "alerts.update",
                                                               "alerts": [{"id": "a1", "state": "firing"}]}
    await communicator.disconnect()


async def test_anonymous_is_refused(org):
    communicator, _ = await _connect(AnonymousUser(), org.slug)
    await _assert_refused(communicator)


async def test_other_org_member_is_refused(org, other_org_user):
    communicator, _ = await _connect(other_org_user, org.slug)
    await _assert_refused(communicator)


async def test_other_org_broadcast_is_not_received(org, other_org, owner, other_org_user):
    ours, _ = await _connect(owner, org.slug)
    theirs, _ = await _connect(other_org_user, other_org.slug)
    await sync_to_async(broadcast_alerts_update)(other_org.pk, [{"id": "theirs"}])
    assert (await theirs.receive_json_from(timeout=2))["alerts"] == [{"id": "theirs"}]
    assert await ours.receive_nothing(timeout=0.3)
    await ours.disconnect()
    await theirs.disconnect()


async def test_the_route_is_registered_in_the_asgi_application(org, editor):
    from fiberstack.asgi import application as asgi_application

    client = Client()
    await sync_to_async(client.force_login)(editor)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    communicator = WebsocketCommunicator(asgi_application, f"/ws/{org.slug}/alerts/",
                                         headers=[(b"cookie", cookie), (b"origin", b"http://localhost")])
    connected, _ = await communicator.connect()
    assert connected
    await sync_to_async(broadcast_alerts_update)(org.pk, [{"id": "x"}])
    assert await communicator.receive_json_from(timeout=2) == {"type": "alerts.update", "alerts": [{"id": "x"}]}
    await communicator.disconnect()
