"""The value chart of an alert page: which series to draw, over which range, with which lines.

The page renders an empty figure whose data attributes name a ``GET /api/v1/metrics`` query (the one
read API the host charts use too); static/js/alerts.js fetches it and draws it with uPlot, the same
library the host pages load, with the thresholds (and an anomaly baseline's band) as flat lines."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlencode

from django.templatetags.static import static
from django.urls import reverse
from django.utils import timezone

from apps.alerts.models import Alert
from apps.metrics.models import Series

UPLOT_JS = "vendor/uplot/uPlot.iife.min.js"
UPLOT_CSS = "vendor/uplot/uPlot.min.css"
#: Time shown before the alert started and after it resolved, so the crossing itself is visible.
MIN_LEAD = dt.timedelta(minutes=30)
TRAIL = dt.timedelta(minutes=15)
#: The API's reducers are per step; the rule's own reducer when the API has it, else the average.
API_AGGS = {"avg", "min", "max", "sum", "count", "last", "p50", "p95", "p99"}


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def matcher_string(labels: dict[str, Any]) -> str:
    """An exact selector for a label set in the query API's syntax."""
    return ",".join(f"{key}={_quote(str(value))}" for key, value in sorted(labels.items()))


def series_query(organization: Any, alert: Alert) -> dict[str, str] | None:
    """The read API filter of the alert's series: the exact series when the evaluator recorded it, else
    the rule's metric and matchers narrowed to the alert's host."""
    params: dict[str, str] = {"org": organization.slug}
    series = (Series.objects.for_org(organization).filter(pk=alert.series_id).only("name", "labels").first()
              if alert.series_id else None)
    if series is not None:
        params["name"] = series.name
        if series.labels:
            params["labels"] = matcher_string(series.labels)
        return params
    rule = alert.rule
    if not rule.metric:
        return None
    params["name"] = rule.metric
    if rule.label_matchers:
        params["labels"] = rule.label_matchers
    if alert.host_id is not None and alert.host is not None:
        params["host"] = alert.host.name
    return params


def chart_range(alert: Alert, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    began = alert.pending_since or alert.started_at or alert.created_at
    lead = max(MIN_LEAD, dt.timedelta(seconds=3 * (alert.rule.window_seconds or 0)))
    end = min(now, alert.resolved_at + TRAIL) if alert.resolved_at and alert.state == "resolved" else now
    return began - lead, max(end, began + dt.timedelta(minutes=1))


def _lines(alert: Alert) -> list[dict[str, Any]]:
    rule = alert.rule
    lines = []
    if rule.critical is not None:
        lines.append({"label": "critical", "value": rule.critical, "color": "#f85149"})
    if rule.warning is not None:
        lines.append({"label": "warning", "value": rule.warning, "color": "#d29922"})
    if rule.resolve_threshold is not None:
        lines.append({"label": "resolve", "value": rule.resolve_threshold, "color": "#3fb950"})
    baseline = alert.baseline or {}
    for name in ("lower", "upper", "center"):
        if isinstance(baseline.get(name), int | float):
            lines.append({"label": f"baseline {name}", "value": baseline[name], "color": "#a371f7"})
    if not lines and alert.threshold is not None:
        lines.append({"label": "threshold", "value": alert.threshold, "color": "#f85149"})
    return lines


def uplot_assets() -> dict[str, str | None]:
    """uPlot's files, or None when not installed: the manifest storage raises for a missing file, and an
    alert page must not fail because its chart cannot draw."""
    try:
        return {"uplot_js": static(UPLOT_JS), "uplot_css": static(UPLOT_CSS)}
    except ValueError:
        return {"uplot_js": None, "uplot_css": None}


def alert_chart(organization: Any, alert: Alert) -> dict[str, Any] | None:
    """Template context of the chart, or None when there is nothing to draw (an absence rule on any metric)."""
    params = series_query(organization, alert)
    if params is None:
        return None
    start, end = chart_range(alert, timezone.now())
    reducer = alert.rule.reducer if alert.rule.reducer in API_AGGS else "avg"
    markers = [{"label": label, "t": moment.timestamp()} for label, moment in (
        ("started", alert.started_at), ("acknowledged", alert.acknowledged_at), ("resolved", alert.resolved_at))
        if moment is not None]
    return {
        "api": reverse("metrics"), "query": urlencode(params), "agg": reducer,
        "start": int(start.timestamp()), "end": int(end.timestamp()), "live": alert.state != "resolved",
        "config": {"lines": _lines(alert), "markers": markers},
        **uplot_assets(),
    }
