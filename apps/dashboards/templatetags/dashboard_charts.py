"""Chart and metric widgets that pages of lower apps embed: `{% host_charts organization host %}` (the host
page's charts) and `{% host_key_metrics organization hosts as cells %}` (the host list's current
CPU/memory/load). Template tags keep the hosts app free of imports from the metrics/dashboards floors
above it (HOUSE_STYLE "one-way floors")."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import template
from django.utils import timezone
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

from apps.dashboards.charts import host_charts as host_charts_context
from apps.dashboards.host_metrics import KEY_METRICS, key_metrics, sparkline_points
from apps.dashboards.overview import human_seconds, utc_text

register = template.Library()


@register.inclusion_tag("dashboards/_host_charts.html")
def host_charts(organization: Any, host: Any) -> dict[str, Any]:
    return host_charts_context(organization.slug, host)


@register.simple_tag
def host_key_metrics(organization: Any, hosts: Any) -> dict[int, Any]:
    """host id -> the key-metric cells of that host (apps.dashboards.host_metrics)."""
    return key_metrics(organization, list(hosts))


@register.simple_tag
def key_metric_cells(cells_by_host: dict[int, Any], host_id: int) -> SafeString:
    """One host row's key-metric ``<td>``s as one string: a template loop over 300 cells of a page cost
    more than reading their data."""
    return mark_safe("".join(  # noqa: S308 - metric keys are ours, the value text is escaped
        f'<td class="key-metric" data-metric="{cell.metric.key}">{sparkline(cell.points)} '
        f'<span class="value">{escape(cell.text)}</span></td>' for cell in cells_by_host.get(host_id) or ()))


@register.simple_tag
def key_metric_titles() -> list[str]:
    return [metric.title for metric in KEY_METRICS]


@register.filter
def item(mapping: Any, key: Any) -> Any:
    """``mapping[key]`` or None: a dict lookup by a variable, which the template language lacks."""
    try:
        return mapping.get(key)
    except AttributeError:
        return None


@register.filter
def sparkline(points: tuple[tuple[float, float], ...]) -> str:
    """An inline SVG sparkline (no script: it renders with Redis down and without JavaScript)."""
    coords = sparkline_points(points)
    if not coords:
        return ""
    return format_html('<svg class="spark" viewBox="0 0 60 16" width="60" height="16" aria-hidden="true">'
                       '<polyline points="{}"/></svg>', coords)


@register.filter
def duration(seconds: float | None) -> str:
    return human_seconds(seconds)


@register.filter
def ago(moment: dt.datetime | None) -> str:
    """"12 s ago" (the steps of static/js/relative_time.js, which keeps it current in the browser)."""
    if moment is None:
        return "never"
    return f"{human_seconds((timezone.now() - moment).total_seconds())} ago"


@register.filter
def utc(moment: dt.datetime | None) -> str:
    return utc_text(moment) if moment is not None else ""
