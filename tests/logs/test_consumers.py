"""The live tail websocket, against the real Redis channel layer: entries posted through the real door
reach a member's socket after commit, filtered by the page's filters; anonymous users and non-members are
refused; organizations stay apart."""

from __future__ import annotations

import json
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser
from django.test import Client

from apps.accounts.live import CLOSE_FORBIDDEN
from apps.logs.routing import websocket_urlpatterns

pytestmark = pytest.mark.django_db(transaction=True)

application = URLRouter(websocket_urlpatterns)


async def _connect(user: Any, slug: str, query: str = "") -> tuple[WebsocketCommunicator, bool]:
    communicator = WebsocketCommunicator(application, f"/ws/{slug}/logs/?{query}")
    communicator.scope["user"] = user
    connected, _ = await communicator.connect()
    return communicator, connected


@sync_to_async
def _post(token: str, entries: list[dict[str, Any]]) -> int:
    response = Client().post("/api/v1/logs", data=json.dumps(entries), content_type="application/json",
                             HTTP_AUTHORIZATION=f"Bearer {token}")
    return response.status_code


async def test_member_tails_new_entries_with_the_page_filters(org: Any, member_ro: Any, write_token: str) -> None:
    communicator, connected = await _connect(member_ro, org.slug, "level=error%2B&q=disk+full&host=db-1")
    assert connected
    assert await _post(write_token, [
        {"message": "disk full on /var", "level": "err", "host": "db-1"},
        {"message": "disk full on /var", "level": "info", "host": "db-1"},
        {"message": "disk full on /var", "level": "crit", "host": "db-2"},
        {"message": "memory low", "level": "crit", "host": "db-1"},
    ]) == 200
    message = await communicator.receive_json_from(timeout=5)
    assert message["type"] == "logs.entries"
    assert [(e["message"], e["level"]) for e in message["entries"]] == [("disk full on /var", "error")]
    assert await communicator.receive_nothing(timeout=0.5)
    await communicator.disconnect()


async def test_anonymous_and_non_members_are_refused(org: Any, other_org_user: Any) -> None:
    for user in (AnonymousUser(), other_org_user):
        communicator, _ = await _connect(user, org.slug)
        assert await communicator.receive_output(timeout=2) == {"type": "websocket.close", "code": CLOSE_FORBIDDEN}


async def test_other_organizations_entries_never_arrive(org: Any, other_org: Any, owner: Any, make_token: Any) -> None:
    communicator, _ = await _connect(owner, org.slug)
    _, other_token = await sync_to_async(make_token)("ingest", organization=other_org)
    assert await _post(other_token, [{"message": "globex secret"}]) == 200
    assert await communicator.receive_nothing(timeout=1)
    await communicator.disconnect()
