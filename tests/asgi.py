"""Driving the real ASGI application in tests: the response of an HTTP request sent through an
``ApplicationCommunicator``, and a signed-in browser session for websocket and page requests."""

from __future__ import annotations

from typing import Any

from asgiref.testing import ApplicationCommunicator
from django.test import Client
from django.utils import timezone

from apps.accounts.models import UserSession


async def response_of(communicator: ApplicationCommunicator) -> tuple[int, dict[bytes, bytes], bytes]:
    """(status, headers, body) of the response the application sends, its body chunks joined."""
    start = await communicator.receive_output(timeout=10)
    assert start["type"] == "http.response.start"
    body = b""
    while True:
        message = await communicator.receive_output(timeout=10)
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    return start["status"], dict(start["headers"]), body


def signed_in(user: Any) -> tuple[Client, str]:
    """A real database session (as the login view makes), with its UserSession row: (client, session key)."""
    client = Client()
    client.force_login(user)
    key = client.cookies["sessionid"].value
    UserSession.objects.create(session_id=key, user=user, last_seen_at=timezone.now())
    return client, key
