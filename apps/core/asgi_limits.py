"""Request body limits enforced in front of Django, at the ASGI layer.

Django's ASGIHandler reads the whole body into a SpooledTemporaryFile (on disk past
FILE_UPLOAD_MAX_MEMORY_SIZE) before any middleware or view runs, so a limit checked in a view comes
after the bytes were already received and stored. This wrapper runs outside that handler:

* a declared ``Content-Length`` over the limit is answered 413 at once; the inner app is never called,
  so nothing of the body is read;
* a body without a length (chunked) is counted while it streams; the message that crosses the limit is
  not passed on -- the inner app sees ``http.disconnect`` instead (Django then drops the request) and the
  client gets the 413.

Ingest doors (``FIBERSTACK_INGEST_PATHS``, regular expressions matched against the whole path) accept
``FIBERSTACK_INGEST_MAX_BODY_BYTES``, the same limit their views check; every other path accepts
``FIBERSTACK_MAX_REQUEST_BODY_BYTES``. Websocket and lifespan scopes pass through untouched."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from django.conf import settings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

JSON_PATH_PREFIXES = ("/api/",)


@dataclass(frozen=True, slots=True)
class BodyLimit:
    """How many body bytes a path accepts, and which setting says so (named in the 413)."""

    limit: int
    setting: str
    ingest: bool


@lru_cache(maxsize=8)
def _compiled(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    return re.compile("|".join(f"(?:{pattern})" for pattern in patterns)) if patterns else None


def body_limit_for(path: str) -> BodyLimit:
    """The limit of one request path (without the ASGI root_path)."""
    ingest = _compiled(tuple(settings.FIBERSTACK_INGEST_PATHS))
    if ingest is not None and ingest.fullmatch(path):
        return BodyLimit(settings.FIBERSTACK_INGEST_MAX_BODY_BYTES, "FIBERSTACK_INGEST_MAX_BODY_BYTES", True)
    return BodyLimit(settings.FIBERSTACK_MAX_REQUEST_BODY_BYTES, "FIBERSTACK_MAX_REQUEST_BODY_BYTES", False)


def _declared_length(scope: Scope) -> int | None:
    """Content-Length as a number; None when absent or not a plain non-negative integer (the server
    rejects such requests itself; the streaming count still applies)."""
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else None
    return None


def _path(scope: Scope) -> str:
    path, root = scope.get("path", ""), scope.get("root_path", "")
    return path[len(root):] if root and path.startswith(root) else path


def too_large_body(path: str, rule: BodyLimit) -> tuple[bytes, bytes]:
    """The 413's (body, content type): JSON for agents and API clients, plain text for pages. One
    implementation for this wrapper and for the check inside daphne (``daphne_limits``)."""
    message = f"The request body is larger than the limit of {rule.limit} bytes ({rule.setting})."
    if rule.ingest or path.startswith(JSON_PATH_PREFIXES):
        return json.dumps({"error": message, "code": "too_large", "limit": rule.limit}).encode(), b"application/json"
    return (message + "\n").encode(), b"text/plain; charset=utf-8"


async def _send_too_large(send: Send, path: str, rule: BodyLimit) -> None:
    body, content_type = too_large_body(path, rule)
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class RequestBodyLimit:
    """ASGI middleware around the Django HTTP app: refuse bodies over the path's limit with 413."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = _path(scope)
        rule = body_limit_for(path)
        declared = _declared_length(scope)
        if declared is not None and declared > rule.limit:
            await _send_too_large(send, path, rule)
            return
        received = 0
        cut = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, cut
            if cut:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > rule.limit:
                    cut = True
                    return {"type": "http.disconnect"}
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, limited_receive, tracking_send)
        # An app that answered before reading the whole body has already replied; only one response.
        if cut and not started:
            await _send_too_large(send, path, rule)
