"""Chart widgets: which charts a host page shows and the read-API query each one runs.

A chart is server-rendered as an empty container whose ``data-query`` is the ``GET /api/v1/metrics``
query string without the range; static/js/charts.js adds start/end/step/agg, draws it with uPlot and
refetches when the range changes. The organization is named in the query (``org=<slug>``) because a
session user may belong to several (apps/organizations/access.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.templatetags.static import static
from django.urls import reverse

from apps.metrics.live import host_points_path
from apps.metrics.models import Series

UPLOT_JS = "vendor/uplot/uPlot.iife.min.js"
UPLOT_CSS = "vendor/uplot/uPlot.min.css"
HOST_SERIES_NAMES_LIMIT = 500


@dataclass(frozen=True, slots=True)
class ChartSpec:
    """A chart of a host page: the metric names it draws (those the host has), how values are read
    (``agg`` per step; ``rate`` turns a cumulative counter into a per-second rate in the browser) and
    whether a p95-per-step line is drawn next to the average."""

    key: str
    title: str
    names: tuple[str, ...]
    unit: str = ""
    agg: str = "avg"
    p95: bool = False
    rate: bool = False


# The reference agent's names (apps/metrics/agent/collectors.py, docs/agents.md), which copy Telegraf's.
HOST_CHARTS: tuple[ChartSpec, ...] = (
    ChartSpec("cpu", "CPU busy", ("cpu_usage_active",), unit="%", p95=True),
    ChartSpec("memory", "Memory used", ("mem_used_percent",), unit="%", p95=True),
    ChartSpec("load", "Load average", ("system_load1", "system_load5", "system_load15",
                                       "node_load1", "node_load5", "node_load15")),
    ChartSpec("network", "Network", ("net_bytes_recv", "net_bytes_sent"), unit="B/s", agg="last", rate=True),
)


# What an on-call engineer looks at first on a host, in this order: the series picker lists the host's
# metrics whose name starts with one of these first (``key_metrics_first``), then the rest by name, so it
# opens at CPU/memory/load rather than at whatever sorts first (``go_gc_duration_seconds``).
KEY_METRIC_PREFIXES: tuple[str, ...] = (
    "cpu_", "node_cpu_", "mem_", "node_memory_", "system_load", "node_load", "swap_",
    "disk_", "node_filesystem_", "diskio_", "node_disk_", "net_", "node_network_",
)


def key_metrics_first(names: list[str]) -> list[str]:
    """``names`` with the key host metrics first (in ``KEY_METRIC_PREFIXES`` order), the others after, by name."""
    def rank(name: str) -> tuple[int, str]:
        for index, prefix in enumerate(KEY_METRIC_PREFIXES):
            if name.startswith(prefix):
                return index, name
        return len(KEY_METRIC_PREFIXES), name
    return sorted(names, key=rank)


def metrics_api_url() -> str:
    return reverse("metrics")


def series_query(org_slug: str, names: tuple[str, ...] | list[str], host: str | None = None) -> str:
    """The read API's filter for ``names`` (one name, or a ``__name__`` regex selector for several)."""
    params: list[tuple[str, str]] = [("org", org_slug)]
    if host is not None:
        params.append(("host", host))
    if len(names) == 1:
        params.append(("name", names[0]))
    else:
        params.append(("match[]", '{__name__=~"' + "|".join(names) + '"}'))
    return urlencode(params)


def chart_context(spec: ChartSpec, org_slug: str, host: str | None, present: set[str]) -> dict[str, Any] | None:
    """The template context of one chart, or None when the host has none of its metrics."""
    names = [name for name in spec.names if name in present]
    if not names:
        return None
    return {"key": spec.key, "title": spec.title, "unit": spec.unit, "agg": spec.agg, "p95": spec.p95,
            "rate": spec.rate, "names": names, "query": series_query(org_slug, names, host)}


def host_series_names(host: Any) -> list[str]:
    """Distinct metric names of one host's series (the host FK index)."""
    return list(Series.objects.for_org(host.organization_id).filter(host=host).order_by("name")
                .values_list("name", flat=True).distinct()[:HOST_SERIES_NAMES_LIMIT])


def host_charts(org_slug: str, host: Any) -> dict[str, Any]:
    """Everything the host page's chart section needs: the standard charts the host has data for, and
    its other metric names for the series selector, key metrics first (the selector opens at the first),
    and the websocket that brings their new points (apps/metrics/live.py)."""
    names = host_series_names(host)
    present = set(names)
    charts = [c for c in (chart_context(spec, org_slug, host.name, present) for spec in HOST_CHARTS) if c]
    charted = {name for chart in charts for name in chart["names"]}
    other = key_metrics_first([name for name in names if name not in charted])
    return {
        "charts": charts,
        "other_names": other,
        "other_query_base": series_query(org_slug, [other[0]], host.name) if other else "",
        "host_name": host.name,
        "org_slug": org_slug,
        "api_url": metrics_api_url(),
        "live_path": host_points_path(org_slug, host.public_id),
        **chart_assets(),
    }


def chart_assets() -> dict[str, str | None]:
    """URLs of uPlot's files, or None when they are not installed (``npm ci`` not run): the manifest
    storage of production raises for a missing file, and a page must not fail because a chart cannot draw."""
    try:
        return {"uplot_js": static(UPLOT_JS), "uplot_css": static(UPLOT_CSS)}
    except ValueError:
        return {"uplot_js": None, "uplot_css": None}
