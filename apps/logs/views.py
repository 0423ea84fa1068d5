"""The logs ingest doors (plain Django views, like the metrics doors):

* ``POST /api/v1/logs`` -- a JSON array, one object or NDJSON; syslog-ng's ``http()`` destination. Reply
  ``{"accepted": n, "rejected": [{"location", "reason"}]}``: 200, or 400 when any entry was refused (the
  others are stored).
* ``POST /api/v1/events`` -- events, same shapes and replies.
* ``GET /api/v1/logs`` and ``GET /api/v1/events`` -- the search API (DRF, apps/logs/api/views.py).

The Elasticsearch-compatible doors are in apps/logs/elastic.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from apps.core.api.schema import read_side
from apps.logs import events, services
from apps.logs.doors import Outcome, accept
from apps.logs.intake import json_items
from apps.metrics.views import DoorError, _require_post, error_response


def outcome_body(outcome: Outcome) -> dict[str, Any]:
    return {
        "accepted": outcome.stored,
        "rejected": [{"location": outcome.items[position].location, "reason": outcome.items[position].error}
                     for position in sorted(outcome.errors)],
    }


def _json_door(request: HttpRequest, **kwargs: Any) -> HttpResponse:
    try:
        _require_post(request)
        outcome = accept(request, json_items, **kwargs)
    except DoorError as exc:
        return error_response(exc.status, exc.code, exc.message, exc.headers, **exc.extra)
    return JsonResponse(outcome_body(outcome), status=400 if outcome.errors else 200)


def _dispatch(request: HttpRequest, write: Callable[[HttpRequest], HttpResponse], view_name: str) -> HttpResponse:
    if request.method == "POST":
        return write(request)
    return _read_view(view_name)()(request)  # the DRF read side, built once per process


def _read_view(view_name: str) -> Callable[[], Callable[..., HttpResponse]]:
    def read_view() -> Callable[..., HttpResponse]:
        from apps.logs.api import views as api_views

        return api_views.as_view(view_name)

    return read_view


@read_side(_read_view("logs"))  # the schema describes GET by the DRF view
@csrf_exempt
def logs_endpoint(request: HttpRequest) -> HttpResponse:
    """``/api/v1/logs``: POST writes entries, GET searches them."""
    return _dispatch(request, lambda r: _json_door(r), "logs")


@read_side(_read_view("events"))
@csrf_exempt
def events_endpoint(request: HttpRequest) -> HttpResponse:
    """``/api/v1/events``: POST writes events, GET lists them."""
    return _dispatch(request, lambda r: _json_door(r, to_row=events.to_row, store=services.ingest_events),
                     "events")
