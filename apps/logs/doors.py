"""What every logs door does between the wire and ``services``: authenticate (an ingest token), count
the request, read the body (size limits, gzip), split it into items, turn each into a row or a per-item
error, count the entries, store. The door plumbing is the metrics doors' own (apps/metrics/views.py:
``read_body``, ``DoorError``, ``_authenticate`` and the per-token rate limiter), imported, not copied."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.http import HttpRequest

from apps.logs import documents, services
from apps.logs.intake import BodyError, Item
from apps.metrics import ratelimit
from apps.metrics.views import DoorError, _authenticate, _rate_limited, read_body


@dataclass(slots=True)
class Outcome:
    """Per item: None when stored, else the reason it was refused; plus the count stored."""

    items: list[Item]
    stored: int = 0
    errors: dict[int, str] = field(default_factory=dict)


def max_entries() -> int:
    return int(getattr(settings, "FIBERSTACK_LOGS_MAX_ENTRIES", 50_000))


def accept(request: HttpRequest, split: Callable[[bytes, int], list[Item]],
           to_row: Callable[[Any, documents.Window], tuple[Any, ...]] = documents.to_row,
           store: Callable[..., services.StoreSummary] = services.ingest_entries) -> Outcome:
    """Run the pipeline; raises DoorError for whole-request failures (auth, limits, unusable body)."""
    token = _authenticate(request)
    verdict = ratelimit.check_request(token.pk)
    if not verdict.allowed:
        raise _rate_limited(verdict)
    body, _ = read_body(request)
    try:
        items = split(body, max_entries())
    except BodyError as exc:
        raise DoorError(400, "invalid", str(exc)) from None
    outcome = Outcome(items)
    window = services.window()
    rows: list[tuple[Any, ...]] = []
    for position, item in enumerate(items):
        if item.error is None:
            try:
                rows.append(to_row(item.doc, window))
                continue
            except documents.DocumentError as exc:
                item.error = str(exc)
        outcome.errors[position] = f"{item.location}: {item.error}"
    if rows:
        verdict = ratelimit.check_samples(token.pk, len(rows))
        if not verdict.allowed:
            raise DoorError(429, "rate_limited",
                            f"Rate limit exceeded: at most {verdict.limit} entries per second for this token; "
                            f"retry after {verdict.retry_after} s. Nothing was stored.",
                            {"Retry-After": str(verdict.retry_after)}, limit=verdict.limit,
                            retry_after=verdict.retry_after)
        # An unreachable database raises through to apps.core.middleware.ApiErrorMiddleware: 503 + Retry-After.
        outcome.stored = store(organization_id=token.organization_id, rows=rows).stored
    return outcome
