"""Request id and request context: one id per request, echoed in the response and recorded by audit
events, so an audit row can be matched with the log lines of the request that caused it.

The context (id, client IP, user agent) is kept in a contextvar rather than passed through every
service call: it describes the transport, not the tenant, so it is safe to read implicitly."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass

from django.http import HttpRequest, HttpResponse

from apps.core.client_ip import client_ip

REQUEST_ID_HEADER = "X-Request-ID"
_VALID_INCOMING = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


@dataclass(frozen=True, slots=True)
class RequestContext:
    request_id: str
    ip: str | None
    user_agent: str


current_request: ContextVar[RequestContext | None] = ContextVar("current_request", default=None)


class RequestIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        request_id = incoming if _VALID_INCOMING.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id  # type: ignore[attr-defined]
        token = current_request.set(
            RequestContext(request_id, client_ip(request), request.headers.get("User-Agent", "")[:400])
        )
        try:
            response = self.get_response(request)
        finally:
            current_request.reset(token)
        response[REQUEST_ID_HEADER] = request_id
        return response
