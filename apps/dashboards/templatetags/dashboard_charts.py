"""`{% host_charts organization host %}`: the chart section of the host page. A template tag keeps the
hosts app free of imports from the metrics/dashboards floors above it (HOUSE_STYLE "one-way floors")."""

from __future__ import annotations

from typing import Any

from django import template

from apps.dashboards.charts import host_charts as host_charts_context
from apps.dashboards.overview import human_seconds

register = template.Library()


@register.inclusion_tag("dashboards/_host_charts.html")
def host_charts(organization: Any, host: Any) -> dict[str, Any]:
    return host_charts_context(organization.slug, host)


@register.filter
def duration(seconds: float | None) -> str:
    return human_seconds(seconds)
