"""Bounded API reads: every statement of a read request runs under ``FIBERSTACK_API_STATEMENT_TIMEOUT_MS``
(default 10 s), and a request that hits it answers 503 JSON with a reason and ``Retry-After`` instead of a
500. One decorator for every read endpoint, so the limit and the reply are the same everywhere."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.db import OperationalError
from django.http import HttpResponse
from rest_framework import status
from rest_framework.response import Response

from apps.core.db import is_statement_timeout, statement_timeout

RETRY_AFTER_SECONDS = 5
Handler = TypeVar("Handler", bound=Callable[..., HttpResponse])


def api_statement_timeout_ms() -> int:
    return int(getattr(settings, "FIBERSTACK_API_STATEMENT_TIMEOUT_MS", 10_000))


def bounded_read(handler: Handler) -> Handler:
    """Wrap a view method (``get``, ``list``) so its SQL runs under the API statement timeout."""

    @functools.wraps(handler)
    def wrapper(*args: Any, **kwargs: Any) -> HttpResponse:
        limit = api_statement_timeout_ms()
        try:
            with statement_timeout(limit):
                return handler(*args, **kwargs)
        except OperationalError as exc:
            if not is_statement_timeout(exc):
                raise
            response = Response({
                "detail": f"The query ran longer than {limit} ms and was cancelled. Narrow it (fewer series, "
                          "a shorter range, a larger step) or retry later.",
                "reason": "statement_timeout",
                "timeout_ms": limit,
            }, status=status.HTTP_503_SERVICE_UNAVAILABLE)
            response["Retry-After"] = str(RETRY_AFTER_SECONDS)
            return response

    return wrapper  # type: ignore[return-value]
