"""Request id and request context: one id per request, echoed in the response and recorded by audit
events, so an audit row can be matched with the log lines of the request that caused it. And the 503
that replaces a 500 while the database is unreachable.

The context (id, client IP, user agent) is kept in a contextvar rather than passed through every
service call: it describes the transport, not the tenant, so it is safe to read implicitly."""

from __future__ import annotations

import logging
import re
import sys
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import psycopg
from django import db
from django.core.signals import got_request_exception
from django.http import HttpRequest, HttpResponse, JsonResponse

from apps.core.client_ip import client_ip
from apps.core.params import BadParameter

logger = logging.getLogger(__name__)

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


#: Seconds a client should wait before retrying while the database is unreachable.
DATABASE_RETRY_AFTER_S = 5
DATABASE_UNAVAILABLE_MESSAGE = f"The database is unavailable; retry in {DATABASE_RETRY_AFTER_S} s."
_UNAVAILABLE_ERRORS = (db.OperationalError, db.InterfaceError, psycopg.OperationalError, psycopg.InterfaceError)


def is_database_unavailable(exc: BaseException | None) -> bool:
    """Connection refused or lost, pool exhausted, statement timeout, deadlock: errors of the database's
    state, not of the request, so retrying later can succeed (psycopg's OperationalError family). The
    psycopg classes are listed too because ``cursor.copy()`` is not wrapped by Django."""
    return isinstance(exc, _UNAVAILABLE_ERRORS)


def _error_response(request: HttpRequest, status: int, message: str, body: dict[str, Any]) -> HttpResponse:
    """``body`` as JSON for the API and for every client that is not a browser asking for a page, the
    plain-text ``message`` for pages."""
    if request.path_info.startswith("/api/") or "text/html" not in request.headers.get("Accept", ""):
        return JsonResponse(body, status=status)
    return HttpResponse(message, content_type="text/plain; charset=utf-8", status=status)


def database_unavailable_response(request: HttpRequest) -> HttpResponse:
    """503 + Retry-After (agents retry a 5xx forever, so they must at least learn when)."""
    message = DATABASE_UNAVAILABLE_MESSAGE
    response = _error_response(request, 503, message, {"error": message, "code": "unavailable", "message": message})
    response["Retry-After"] = str(DATABASE_RETRY_AFTER_S)
    return response


def nul_parameter(request: HttpRequest) -> str | None:
    """The first query parameter whose name or value holds a NUL character (U+0000), or None. PostgreSQL's
    text refuses NUL, so a filter carrying one would fail in the database as a 500 on any page or endpoint
    that passes it to SQL; no parameter of ours can use it."""
    if "%00" not in request.META.get("QUERY_STRING", "") and "\x00" not in request.META.get("QUERY_STRING", ""):
        return None
    for name, values in request.GET.lists():
        if "\x00" in name or any("\x00" in value for value in values):
            return name.replace("\x00", "\\x00")
    return None


def bad_parameter_response(request: HttpRequest, name: str, message: str) -> HttpResponse:
    """The 400 of a query parameter that cannot be read, in both error shapes of the API: the doors' and
    generic {"error", "code", "message"} (InfluxDB clients read "error") and the query API's {"detail",
    "parameter"}; plain ``message`` for a page."""
    return _error_response(request, 400, message, {"error": message, "code": "invalid", "message": message,
                                                   "detail": message, "parameter": name})


def not_found_response(request: HttpRequest) -> JsonResponse:
    message = f"There is no endpoint at {request.path_info!r}."
    return JsonResponse({"error": message, "code": "not_found", "message": message}, status=404)


class ApiErrorMiddleware:
    """API clients and agents never get an HTML error page.

    * The database unreachable becomes a 503 with ``Retry-After`` instead of a 500. Errors raised by a
      view arrive in ``process_exception``. Errors raised before the view (a session loaded by another
      middleware's ``process_view``) have already become Django's 500 when they reach us; the
      ``got_request_exception`` receiver below marks the request so ``__call__`` can replace it.
    * A query parameter holding a NUL character is a 400 before any view runs (``nul_parameter``), and
      one a page cannot read (``apps.core.params.BadParameter``, raised by the view) is the same 400.
    * A path under ``/api/`` that no route matches (``/api/v1/agents//metrics``) gets a JSON 404
      instead of Django's HTML page; 404s of the API views themselves are JSON already and pass through.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        bad = nul_parameter(request)
        if bad is not None:
            return bad_parameter_response(request, bad, f"{bad}: text may not contain the NUL character (U+0000).")
        response = self.get_response(request)
        if response.status_code == 500 and getattr(request, "_database_unavailable", False):
            return database_unavailable_response(request)
        if (response.status_code == 404 and request.path_info.startswith("/api/")
                and response.get("Content-Type", "").startswith("text/html")):
            return not_found_response(request)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, BadParameter):
            return bad_parameter_response(request, exception.name, exception.message)
        if not is_database_unavailable(exception):
            return None
        logger.warning("database unavailable, answering 503 to %s %s: %s", request.method, request.path, exception)
        return database_unavailable_response(request)


def _mark_database_unavailable(sender: Any, request: HttpRequest | None = None, **kwargs: Any) -> None:
    # Django sends this signal from inside its except block, so the exception is still current.
    if request is not None and is_database_unavailable(sys.exc_info()[1]):
        request._database_unavailable = True  # type: ignore[attr-defined]


got_request_exception.connect(_mark_database_unavailable, dispatch_uid="fiberstack.core.database_unavailable")
