"""Current CPU / memory / load with a one-hour sparkline for each host on a page of the host list.

Reads go through the metrics read side only: ``read.latest`` for the current value (hot tier, then raw
samples when Redis lacks it or is down) and one ``read.window`` over all the page's series for the
sparklines (rollups and the raw tail stitched there, never here). The host list renders this through a
template tag, so the hosts app stays free of imports from the floors above it."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache
from django.utils import timezone

from apps.metrics import read
from apps.metrics.models import Series

SPARK_RANGE = dt.timedelta(hours=1)
SPARK_STEP = 300
# A page's sparklines are cached this long: a line of 5-minute steps barely moves in 15 s, while the page is
# reloaded by every on-call screen (the window read is most of the host list's SQL time, bench/pages.py).
# The current values beside them are never cached.
SPARK_CACHE_SECONDS = 15


@dataclass(frozen=True, slots=True)
class KeyMetric:
    """A host-list column: the first of ``names`` a host has is shown (agents name things differently)."""

    key: str
    title: str
    names: tuple[str, ...]
    unit: str = ""


KEY_METRICS: tuple[KeyMetric, ...] = (
    KeyMetric("cpu", "CPU", ("cpu_usage_active",), "%"),
    KeyMetric("memory", "Memory", ("mem_used_percent",), "%"),
    KeyMetric("load", "Load", ("system_load1", "node_load1")),
)


@dataclass(frozen=True, slots=True)
class Cell:
    """One host's value of one key metric: the newest value (None: no sample) and the sparkline points."""

    metric: KeyMetric
    value: float | None
    points: tuple[tuple[float, float], ...]

    @property
    def text(self) -> str:
        if self.value is None:
            return "—"
        digits = 0 if abs(self.value) >= 100 else 1 if abs(self.value) >= 10 else 2
        return f"{self.value:.{digits}f}{' ' + self.metric.unit if self.metric.unit else ''}"


def key_metrics(organization: Any, hosts: list[Any], now: dt.datetime | None = None) -> dict[int, list[Cell]]:
    """host id -> one Cell per ``KEY_METRICS`` column, for ``hosts`` of ``organization`` (a page: the
    series lookup, the latest values and the sparkline window are one query each, whatever the count)."""
    now = now or timezone.now()
    host_ids = [host.pk for host in hosts]
    wanted = {name for metric in KEY_METRICS for name in metric.names}
    chosen: dict[tuple[int, str], int] = {}
    # The lowest id per (host, name): a host has one series of each of these names in practice.
    for sid, host_id, name in (Series.objects.for_org(organization).filter(host_id__in=host_ids, name__in=wanted)
                               .order_by("-id").values_list("id", "host_id", "name")):
        chosen[(host_id, name)] = sid
    ids = sorted(set(chosen.values()))
    latest = read.latest(organization, ids) if ids else {}
    points = _spark_points(organization, ids, now) if ids else {}
    cells: dict[int, list[Cell]] = {}
    for host_id in host_ids:
        row = []
        for metric in KEY_METRICS:
            sid = next((chosen[(host_id, n)] for n in metric.names if (host_id, n) in chosen), None)
            value = latest.get(sid, (0.0, None))[1] if sid is not None else None
            row.append(Cell(metric, value, tuple([(p[0], p[1]) for p in points.get(sid or 0, ()) if p[1] is not None])))
        cells[host_id] = row
    return cells


def _spark_points(organization: Any, ids: list[int], now: dt.datetime) -> dict[int, list[list[float]]]:
    """series id -> [[time, avg], …] over the last hour in 5-minute steps, cached per page of series."""
    key = f"dashboards:spark:{organization.public_id.hex}:{hashlib.sha256(repr(ids).encode()).hexdigest()[:32]}"
    found = cache.get(key)
    if isinstance(found, dict):
        return found
    points = read.window(organization, read.Selector(ids=tuple(ids)), now - SPARK_RANGE, now,
                         step=SPARK_STEP, agg="avg", now=now).points
    cache.set(key, points, SPARK_CACHE_SECONDS)
    return points


def sparkline_points(points: tuple[tuple[float, float], ...], width: int = 60, height: int = 16) -> str:
    """SVG polyline coordinates of ``points`` scaled into width x height (flat line in the middle when
    all values are equal); "" for fewer than two points."""
    if len(points) < 2:
        return ""
    t0 = points[0][0]
    values = [v for _, v in points]
    lo, hi = min(values), max(values)
    x_scale = width / ((points[-1][0] - t0) or 1.0)
    if hi == lo:
        return " ".join([f"{(t - t0) * x_scale:.1f},{height / 2:.1f}" for t, _ in points])
    y_scale = (height - 2) / (hi - lo)
    return " ".join([f"{(t - t0) * x_scale:.1f},{height - 1 - (v - lo) * y_scale:.1f}" for t, v in points])
