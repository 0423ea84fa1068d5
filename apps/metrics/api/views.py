"""Read API: the series catalogue and metric points. Organization scoping and roles come from
OrgScopedMixin (token scope read or write, or a session member with at least the viewer role)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.db import DataError
from django.utils import timezone
from rest_framework import generics, pagination, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.api.viewsets import OrgScopedMixin
from apps.core.roles import Role
from apps.metrics import query
from apps.metrics.api.serializers import SeriesSerializer
from apps.metrics.models import Series

READ_ROLES = {"get": Role.VIEWER, "head": Role.VIEWER, "options": Role.VIEWER, "list": Role.VIEWER}


def _bad_parameter(exc: query.QueryError) -> Response:
    return Response({"detail": exc.message, "parameter": exc.parameter}, status=status.HTTP_400_BAD_REQUEST)


def _selectors(request: Request) -> list[str]:
    return [s for s in request.query_params.getlist("match[]") if s.strip()]


class SeriesPagination(pagination.CursorPagination):
    ordering = ("name", "id")
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


class SeriesListView(OrgScopedMixin, generics.ListAPIView):
    """``GET /api/v1/series?name=&host=&labels=&match[]=``: series of the caller's organization."""

    queryset = Series.objects.select_related("host")
    serializer_class = SeriesSerializer
    pagination_class = SeriesPagination
    required_roles = READ_ROLES

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        try:
            return super().list(request, *args, **kwargs)
        except query.QueryError as exc:
            return _bad_parameter(exc)
        except DataError as exc:  # a regex PostgreSQL rejects although Python accepted it
            return Response({"detail": f"invalid label matcher: {exc}", "parameter": "labels"},
                            status=status.HTTP_400_BAD_REQUEST)

    def get_queryset(self) -> Any:
        params = self.request.query_params
        return query.select_series(super().get_queryset(), name=params.get("name"), host=params.get("host"),
                                   labels=params.get("labels"), selectors=_selectors(self.request))


class MetricsQueryView(OrgScopedMixin, APIView):
    """``GET /api/v1/metrics?name=&host=&labels=&match[]=&start=&end=&step=&agg=``: per series its labels
    and ``[[epoch_seconds, value], ...]``; raw points without ``step``, aggregated buckets with it."""

    required_roles = READ_ROLES

    def get(self, request: Request) -> Response:
        try:
            return Response(self._answer(request))
        except query.QueryError as exc:
            return _bad_parameter(exc)
        except DataError as exc:
            return Response({"detail": f"invalid label matcher: {exc}", "parameter": "labels"},
                            status=status.HTTP_400_BAD_REQUEST)

    def _answer(self, request: Request) -> dict[str, Any]:
        params = request.query_params
        end = query.parse_time(params.get("end"), "end", timezone.now())
        start = query.parse_time(params.get("start"), "start", end - query.DEFAULT_RANGE)
        if start > end:
            raise query.QueryError("start", "start must not be after end")
        step = query.parse_step(params.get("step"))
        agg = query.parse_agg(params.get("agg"), step)
        max_series = int(getattr(settings, "FIBERSTACK_QUERY_MAX_SERIES", 1000))
        max_points = int(getattr(settings, "FIBERSTACK_QUERY_MAX_POINTS", 500_000))
        selected = query.select_series(
            Series.objects.for_org(request.organization).select_related("host"),
            name=params.get("name"), host=params.get("host"), labels=params.get("labels"),
            selectors=_selectors(request),
        ).order_by("name", "id")
        series = list(selected[: max_series + 1])
        if len(series) > max_series:
            raise query.QueryError("name", f"more than {max_series} series match: narrow the query with name, "
                                           "host or labels")
        tier = query.pick_tier(start, end, step)
        points = tier.fetch([s.id for s in series], start, end, step, agg, max_points)
        return {
            "start": _epoch(start),
            "end": _epoch(end),
            "step": step,
            "agg": agg if step else None,
            "tier": tier.name,
            "series": [
                {
                    "id": str(s.public_id),
                    "name": s.name,
                    "labels": s.labels,
                    "host": s.host.name if s.host else None,
                    "unit": s.unit,
                    "points": points.get(s.id, []),
                }
                for s in series
            ],
        }


def _epoch(moment: dt.datetime) -> float:
    return moment.timestamp()
