"""Read API: the series catalogue and metric points. Organization scoping and roles come from
OrgScopedMixin (a token with the read or config scope, or a session member with at least the viewer role)."""

from __future__ import annotations

import datetime as dt
import functools
import json
from typing import Any

from django.db import DataError
from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.api.pagination import CursorPagination
from apps.core.api.timeouts import Handler, bounded_read
from apps.core.api.viewsets import READ_REQUIRED_SCOPES, OrgScopedMixin
from apps.core.roles import Role
from apps.metrics import read
from apps.metrics.api.serializers import SeriesSerializer
from apps.metrics.models import Series
from apps.metrics.read import params as query
from apps.metrics.read.catalogue import CATALOGUE
from apps.metrics.read.select import select_series

READ_ROLES = {"get": Role.VIEWER, "head": Role.VIEWER, "options": Role.VIEWER, "list": Role.VIEWER}


def _bad_parameter(exc: query.QueryError) -> Response:
    return Response({"detail": exc.message, "parameter": exc.parameter, **exc.extra},
                    status=status.HTTP_400_BAD_REQUEST)


def read_endpoint(handler: Handler) -> Handler:
    """A read API method: its SQL runs under the API statement timeout (``bounded_read``: 503 when hit),
    and bad parameters answer 400 naming them. The errors are caught outside the timeout's transaction,
    so a statement PostgreSQL rejected is rolled back before anything else runs."""
    bounded = bounded_read(handler)

    @functools.wraps(handler)
    def wrapper(*args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return bounded(*args, **kwargs)
        except query.QueryError as exc:
            return _bad_parameter(exc)
        except DataError as exc:  # a regex PostgreSQL rejects although RE2 accepted it
            return Response({"detail": f"invalid label matcher: {exc}".strip(), "parameter": "labels"},
                            status=status.HTTP_400_BAD_REQUEST)

    return wrapper  # type: ignore[return-value]


def _selectors(request: Request) -> list[str]:
    return [s for s in request.query_params.getlist("match[]") if s.strip()]


def selector(request: Request) -> read.Selector:
    """The read API's series filters: ``name``, ``host``, ``labels`` and any number of ``match[]``."""
    params = request.query_params
    return read.Selector(name=params.get("name"), host=params.get("host"), labels=params.get("labels"),
                         match=tuple(_selectors(request)))


#: The series filters of every metrics read endpoint (``selector``).
SELECTOR_PARAMETERS = [
    OpenApiParameter("name", str, description="Metric name."),
    OpenApiParameter("host", str, description="Host name."),
    OpenApiParameter("labels", str, description='Label matchers, e.g. job="node",instance=~"10\\..*".'),
    OpenApiParameter("match[]", str, many=True, description="PromQL-style series selectors (ORed)."),
]


class SeriesPagination(CursorPagination):
    ordering = ("name", "id")
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


@extend_schema_view(get=extend_schema(parameters=SELECTOR_PARAMETERS))
class SeriesListView(OrgScopedMixin, generics.ListAPIView):
    """``GET /api/v1/series?name=&host=&labels=&match[]=``: series of the caller's organization."""

    queryset = Series.objects.select_related("host")
    serializer_class = SeriesSerializer
    pagination_class = SeriesPagination
    required_roles = READ_ROLES
    required_scopes = READ_REQUIRED_SCOPES

    @read_endpoint
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    def get_queryset(self) -> Any:
        params = self.request.query_params
        return select_series(super().get_queryset(), organization=self.request.organization,
                                   name=params.get("name"), host=params.get("host"), labels=params.get("labels"),
                                   selectors=_selectors(self.request))


class MetricsQueryView(OrgScopedMixin, APIView):
    """``GET /api/v1/metrics?name=&host=&labels=&match[]=&start=&end=&step=&agg=&tier=&percentiles=``: per
    series its labels, ``[[epoch_seconds, value], ...]`` and a summary, from the tier that suits the range
    and step (``apps.metrics.read`` documents the choice, the percentile error and the caps).

    Dashboards poll this, so the reply is built as JSON text directly: PostgreSQL returns only the ids of
    the matching series, their id/name/labels/host come as cached JSON text from the series ``CATALOGUE`` (no
    model instances, no decode/encode of label dicts), and the points go through one ``json.dumps`` per
    series (bench/query.py measures it)."""

    required_roles = READ_ROLES
    required_scopes = READ_REQUIRED_SCOPES

    @extend_schema(
        parameters=[
            *SELECTOR_PARAMETERS,
            OpenApiParameter("start", str, description="Epoch seconds or RFC 3339; default end - 1 h."),
            OpenApiParameter("end", str, description="Epoch seconds or RFC 3339; default now."),
            OpenApiParameter("step", str, description="Seconds per point (`60` or `60s`); default: raw points."),
            OpenApiParameter("agg", str, enum=list(query.AGGS), description="Aggregation per step; default avg."),
            OpenApiParameter("tier", str, enum=list(query.TIER_NAMES), description="Force a storage tier."),
            OpenApiParameter("percentiles", str, description="Summary percentiles, e.g. `p50,p99`."),
        ],
        responses={200: OpenApiTypes.OBJECT},
    )
    @read_endpoint
    def get(self, request: Request) -> HttpResponse:
        return HttpResponse(self._answer(request), content_type="application/json")

    def _answer(self, request: Request) -> str:
        params = request.query_params
        end = query.parse_time(params.get("end"), "end", timezone.now())
        start = query.parse_time(params.get("start"), "start", end - query.DEFAULT_RANGE)
        if start > end:
            raise query.QueryError("start", "start must not be after end")
        step = query.parse_step(params.get("step"))
        agg = query.parse_agg(params.get("agg"))
        forced = query.parse_tier(params.get("tier"))
        percentiles = query.parse_percentiles(params.get("percentiles"), agg)
        # Series cap, tier choice and the point caps (in SQL) are read.window's (QueryError -> 400).
        answer = read.window(request.organization, selector(request), start, end, step=step, agg=agg,
                             tier=forced, percentiles=percentiles)
        plan = answer.plan
        dumps = _dumps
        points, summary = answer.points, answer.summary
        items = [
            f'{e.head},"unit":{dumps(e.unit)},"points":{dumps(points.get(e.id, []))},'
            f'"summary":{dumps(summary.get(e.id))}}}'
            for e in CATALOGUE.entries(request.organization, answer.series_ids)
        ]
        head = dumps({"start": plan.start.timestamp(), "end": end.timestamp(), "step": plan.step,
                      "agg": agg if plan.step else None, "tier": plan.tier})
        return head[:-1] + ',"series":[' + ",".join(items) + "]}"


def _dumps(value: Any) -> str:
    # As DRF's JSONRenderer: compact, UTF-8 rather than \u escapes, no NaN/Infinity (not JSON).
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _epoch(moment: dt.datetime) -> float:
    return moment.timestamp()
