"""``Server-Timing`` on every response when ``FIBERSTACK_SERVER_TIMING`` is on: the time Django spent on the
request (middleware, view, template) and in SQL, with the query count, so a browser's network panel or a
benchmark client can tell server time from network and ASGI time. Off by default: timings tell an
outsider which requests are expensive; with the setting off the middleware removes itself at start-up."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import MiddlewareNotUsed
from django.db import connection
from django.http import HttpRequest, HttpResponse

HEADER = "Server-Timing"


class _SqlClock:
    """A ``connection.execute_wrapper``: counts statements and adds up their time."""

    def __init__(self) -> None:
        self.count = 0
        self.seconds = 0.0

    def __call__(self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.count += 1
            self.seconds += time.perf_counter() - started


class ServerTimingMiddleware:
    """Outermost middleware, so ``app`` covers everything Django does for the request."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        if not getattr(settings, "FIBERSTACK_SERVER_TIMING", False):
            raise MiddlewareNotUsed
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        clock = _SqlClock()
        started = time.perf_counter()
        with connection.execute_wrapper(clock):
            response = self.get_response(request)
        app_ms = (time.perf_counter() - started) * 1000
        response[HEADER] = (f'app;dur={app_ms:.1f}, db;dur={clock.seconds * 1000:.1f};desc="{clock.count} queries"')
        return response
