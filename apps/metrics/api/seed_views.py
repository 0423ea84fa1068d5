"""Two read endpoints beside the generic query API:

* ``GET /api/metrics?node_id=&start=&end=&aggregation=raw|hourly|daily`` -- the FiberStack seed's shape
  for one probe node (series ``probe_latency_ms``, ``probe_uptime_pct``, ``probe_packet_loss`` labelled
  ``node_id``): ``node_id``, ``node_name``, ``timeframe``, ``aggregation``, ``data`` [{time, latency_ms,
  uptime_pct, packet_loss}] and ``summary`` {avg_latency, avg_uptime, avg_packet_loss, sample_count}.
  raw answers from raw samples, hourly from the 1h tier, daily from the 1d tier (each clamped to the
  organization's retention of that tier). Hourly/daily values are means.

  Daily buckets (and the daily summary) also carry ``availability_pct``: the share of uptime samples
  above 95 %. It is read from the uptime sketches -- the samples whose bin lies entirely above 95 --
  which is exact except for samples in (95, 95.24], the upper part of the bin that holds 95 (bin edges
  are powers of 2**(1/35)); those count as not above. ``sample_count`` is the number of reports: the
  largest sample count among the three series.
* ``GET /api/v1/metrics/latest?name=&host=&labels=&match[]=`` -- the latest value of every matching series
  from the Redis hot tier (``apps.metrics.hot``), falling back to the raw table for series the hot tier
  does not hold (Redis flushed or down)."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from django.db import connection
from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.api.viewsets import READ_REQUIRED_SCOPES, OrgScopedMixin
from apps.metrics import read
from apps.metrics.api.views import READ_ROLES, SELECTOR_PARAMETERS, read_endpoint, selector
from apps.metrics.models import Series
from apps.metrics.read import params as query
from apps.metrics.read.catalogue import CATALOGUE
from apps.metrics.read.fetch import rollup_source
from apps.metrics.read.select import max_series_per_query, select_ids
from apps.metrics.sketch import key_for_value
from apps.metrics.sketch_sql import bucket_entries_sql, entry_count_sql, entry_key_sql

PROBE_FIELDS = {"probe_latency_ms": "latency_ms", "probe_uptime_pct": "uptime_pct", "probe_packet_loss": "packet_loss"}
AGGREGATIONS = {"raw": ("raw", None), "hourly": ("1h", 3600), "daily": ("1d", 86400)}
AVAILABILITY_THRESHOLD = 95.0
DEFAULT_SEED_RANGE = dt.timedelta(hours=24)


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC).isoformat().replace("+00:00", "Z")


class SeedMetricsView(OrgScopedMixin, APIView):
    """``GET /api/metrics``: one probe node's latency, uptime and packet loss in the seed's shape."""

    required_roles = READ_ROLES
    required_scopes = READ_REQUIRED_SCOPES

    @extend_schema(
        parameters=[
            OpenApiParameter("node_id", str, required=True, description="The probe's node id (host name)."),
            OpenApiParameter("start", str, description="Epoch seconds or RFC 3339; default end - 24 h."),
            OpenApiParameter("end", str, description="Epoch seconds or RFC 3339; default now."),
            OpenApiParameter("aggregation", str, enum=["raw", "hourly", "daily"]),
        ],
        responses={200: OpenApiTypes.OBJECT},
    )
    @read_endpoint
    def get(self, request: Request) -> Response:
        return self._answer(request)

    def _answer(self, request: Request) -> Response:
        params = request.query_params
        node_id = (params.get("node_id") or "").strip().lower()
        if not node_id:
            raise query.QueryError("node_id", "node_id is required")
        aggregation = params.get("aggregation") or "raw"
        if aggregation not in AGGREGATIONS:
            raise query.QueryError("aggregation", f"aggregation must be raw, hourly or daily, not {aggregation!r}")
        end = query.parse_time(params.get("end"), "end", timezone.now())
        start = query.parse_time(params.get("start"), "start", end - DEFAULT_SEED_RANGE)
        if start > end:
            raise query.QueryError("start", "start must not be after end")
        series = list(Series.objects.for_org(request.organization).select_related("host")
                      .filter(name__in=PROBE_FIELDS, labels__contains={"node_id": node_id}).order_by("name", "id"))
        if not series:
            return Response({"detail": "No such node."}, status=status.HTTP_404_NOT_FOUND)
        tier, step = AGGREGATIONS[aggregation]
        try:
            answer = read.window(request.organization, read.Selector(ids=tuple(s.id for s in series)), start, end,
                                 step=step, tier=tier)
        except read.PointLimitError as exc:
            # This endpoint has no step: what the client can change is the range or the aggregation.
            raise read.PointLimitError(f"more than {exc.limit} points in this range: use a later start (or an "
                                       "earlier end), or aggregation=hourly or daily", limit=exc.limit,
                                       suggested_step=None, parameter="start") from None
        rows: dict[float, dict[str, Any]] = {}
        for s in series:
            field = PROBE_FIELDS[s.name]
            for t, value in answer.points.get(s.id, []):
                rows.setdefault(t, {}).setdefault(field, value)
        summary_of = {PROBE_FIELDS[s.name]: answer.summary.get(s.id, {}) for s in series}
        summary: dict[str, Any] = {
            "avg_latency": summary_of.get("latency_ms", {}).get("avg"),
            "avg_uptime": summary_of.get("uptime_pct", {}).get("avg"),
            "avg_packet_loss": summary_of.get("packet_loss", {}).get("avg"),
            "sample_count": max((int(v.get("count") or 0) for v in summary_of.values()), default=0),
        }
        availability: dict[float, float | None] = {}
        if aggregation == "daily":
            uptime = next((s for s in series if s.name == "probe_uptime_pct"), None)
            availability, summary["availability_pct"] = _availability(answer.plan, uptime.id if uptime else None)
        data = []
        for t in sorted(rows):
            item = {"time": _iso(t), **{f: rows[t].get(f) for f in PROBE_FIELDS.values()}}
            if aggregation == "daily":
                item["availability_pct"] = availability.get(t)
            data.append(item)
        host = next((s.host for s in series if s.host is not None), None)
        return Response({
            "node_id": node_id,
            "node_name": host.label if host is not None else node_id,
            "timeframe": {"start": _iso(answer.plan.start.timestamp()), "end": _iso(end.timestamp())},
            "aggregation": aggregation,
            "data": data,
            "summary": summary,
        })


def _availability(plan: read.Plan, series_id: int | None) -> tuple[dict[float, float | None], float | None]:
    """Per step bucket and overall: % of uptime samples whose sketch bin lies above 95 %. Reads the same
    rollup rows as ``read.window`` did for this plan (``rollup_source``: stored rows + the newest raw)."""
    if series_id is None or plan.start > plan.end:
        return {}, None
    source, params = rollup_source(plan.tier, plan.start, plan.end, series_ids=[series_id])
    params["ids"] = [series_id]
    step = int(plan.step or 86400)
    threshold = key_for_value(AVAILABILITY_THRESHOLD)
    # A bucket that kept its values has its values binned here, so both kinds of bucket count the same.
    sql = f"""SELECT floor(extract(epoch FROM r.bucket) / {step}) * {step} AS b, sum({entry_count_sql("u")}),
               sum({entry_count_sql("u")}) FILTER (WHERE {entry_key_sql("u")} > %(k)s)
        FROM {source} AS r CROSS JOIN LATERAL {bucket_entries_sql("r")}
        GROUP BY 1 ORDER BY 1"""  # noqa: S608
    params["k"] = threshold
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        found = cursor.fetchall()
    per_bucket = {float(int(b)): (100.0 * float(above or 0) / float(total)) if total else None
                  for b, total, above in found}
    total = sum(float(t or 0) for _, t, _ in found)
    above = sum(float(a or 0) for _, _, a in found)
    return per_bucket, (100.0 * above / total if total else None)


class LatestValuesView(OrgScopedMixin, APIView):
    """``GET /api/v1/metrics/latest?name=&host=&labels=&match[]=``: each matching series' newest value."""

    required_roles = READ_ROLES
    required_scopes = READ_REQUIRED_SCOPES

    @extend_schema(
        parameters=SELECTOR_PARAMETERS,
        responses={200: OpenApiTypes.OBJECT},
    )
    @read_endpoint
    def get(self, request: Request) -> Response:
        ids = select_ids(request.organization, selector(request), max_series=max_series_per_query())
        latest = read.latest(request.organization, ids)
        # Built by hand from the series catalogue's cached JSON text (apps.metrics.read.catalogue):
        # no label dicts decoded or encoded per request, which dominated q3 of bench/query.py.
        items = []
        append = items.append
        for entry in CATALOGUE.entries(request.organization, ids):
            point = latest.get(entry.id)
            if point is None:
                append(entry.head + ',"time":null,"value":null}')
            else:
                append(f'{entry.head},"time":{_number(point[0])},"value":{_number(point[1])}}}')
        return HttpResponse('{"series":[' + ",".join(items) + "]}", content_type="application/json")


def _number(value: float) -> str:
    return repr(value) if math.isfinite(value) else "null"

