"""Search API: ``GET /api/v1/logs`` and ``GET /api/v1/events``. Read tokens (or config) and session
members with the viewer role; scoping comes from OrgScopedMixin (the caller's organization only)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.api.viewsets import READ_REQUIRED_SCOPES, OrgScopedMixin
from apps.core.roles import Role
from apps.logs import search
from apps.logs.documents import clean
from apps.logs.events import EventKind
from apps.metrics.read.params import QueryError, parse_time

READ_ROLES = {"get": Role.VIEWER, "head": Role.VIEWER, "options": Role.VIEWER}
DEFAULT_RANGE = dt.timedelta(days=1)


def _list(params: Any, name: str) -> list[str]:
    """``host=a&host=b`` or ``host=a,b``."""
    return [clean(part.strip()) for value in params.getlist(name) for part in value.split(",") if part.strip()]


def build_query(organization_id: int, params: Any, default_range: dt.timedelta = DEFAULT_RANGE) -> search.LogQuery:
    """A LogQuery from query parameters (the API's and the page's); raises SearchError naming the bad one."""
    try:
        end = parse_time(params.get("end"), "end", timezone.now() + dt.timedelta(minutes=10))
        start = parse_time(params.get("start"), "start", end - default_range)
    except QueryError as exc:
        raise search.SearchError(exc.parameter, exc.message) from None
    if start > end:
        raise search.SearchError("start", "start must not be after end")
    kinds = _list(params, "kind")
    unknown = [kind for kind in kinds if kind not in EventKind.values]
    if unknown:
        raise search.SearchError("kind", f"unknown kind {unknown[0]!r}: use {', '.join(EventKind.values)}")
    q = clean(params.get("q") or "")
    if len(q) > 1000:
        raise search.SearchError("q", "q is longer than 1000 characters")
    cursor = params.get("cursor")
    return search.LogQuery(
        organization_id=organization_id, start=start, end=end, q=q, hosts=_list(params, "host"),
        levels=search.parse_levels(",".join(params.getlist("level"))), services=_list(params, "service"),
        programs=_list(params, "program"), kinds=kinds, limit=search.parse_limit(params.get("limit")),
        cursor=search.decode_cursor(cursor) if cursor else None,
    )


class _SearchView(OrgScopedMixin, APIView):
    required_roles = READ_ROLES
    required_scopes = READ_REQUIRED_SCOPES
    run: Callable[[search.LogQuery], tuple[list[dict[str, Any]], str | None]]
    #: Parameters of the other endpoint, refused here rather than silently ignored.
    foreign: tuple[str, ...] = ()

    def get(self, request: Request) -> Response:
        try:
            for name in self.foreign:
                if request.query_params.get(name):
                    raise search.SearchError(name, f"{name} is not a filter of this endpoint")
            query = build_query(request.organization.pk, request.query_params)  # type: ignore[attr-defined]
        except search.SearchError as exc:
            return Response({"detail": exc.message, "parameter": exc.parameter}, status=status.HTTP_400_BAD_REQUEST)
        results, next_cursor = type(self).run(query)
        return Response({"results": results, "next": next_cursor})


def _parameters(*names: str) -> list[OpenApiParameter]:
    return [PARAMETERS[name] for name in names]


PARAMETERS = {
    "q": OpenApiParameter("q", str, description="Full-text search (at most 1000 characters)."),
    "host": OpenApiParameter("host", str, many=True, description="Host names (repeat or comma-separate)."),
    "level": OpenApiParameter("level", str, many=True, description="Levels, e.g. `error` or `warning+`."),
    "service": OpenApiParameter("service", str, many=True, description="Service names."),
    "program": OpenApiParameter("program", str, many=True, description="Program names."),
    "kind": OpenApiParameter("kind", str, many=True, enum=list(EventKind.values), description="Event kinds."),
    "start": OpenApiParameter("start", str, description="Epoch seconds or RFC 3339; default end - 24 h."),
    "end": OpenApiParameter("end", str, description="Epoch seconds or RFC 3339; default now + 10 min."),
    "limit": OpenApiParameter("limit", int, description=f"Page size, 1 to {search.MAX_LIMIT}; default 100."),
    "cursor": OpenApiParameter("cursor", str, description="The `next` of the previous page."),
}


@extend_schema_view(get=extend_schema(
    parameters=_parameters("q", "host", "level", "service", "program", "start", "end", "limit", "cursor"),
    responses={200: OpenApiTypes.OBJECT}))
class LogSearchView(_SearchView):
    """``GET /api/v1/logs?q=&host=&level=&service=&program=&start=&end=&limit=&cursor=``: entries, newest
    first; ``next`` is the cursor of the following page or null."""

    run = staticmethod(search.search_entries)
    foreign = ("kind",)


@extend_schema_view(get=extend_schema(
    parameters=_parameters("host", "kind", "level", "start", "end", "limit", "cursor"),
    responses={200: OpenApiTypes.OBJECT}))
class EventListView(_SearchView):
    """``GET /api/v1/events?host=&kind=&level=&start=&end=&limit=&cursor=``: events, newest first."""

    run = staticmethod(search.search_events)
    foreign = ("q", "service", "program")


_VIEWS: dict[str, Callable[..., HttpResponse]] = {}


def as_view(name: str) -> Callable[..., HttpResponse]:
    """The DRF view behind a combined read/write endpoint, built once per process."""
    if name not in _VIEWS:
        _VIEWS[name] = (LogSearchView if name == "logs" else EventListView).as_view()
    return _VIEWS[name]
