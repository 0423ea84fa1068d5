"""What the overview page shows, as plain data: host status counts, the down hosts, the inventory by
environment/datacenter, ingest activity and rollup lag. Every read is an indexed query on one
organization's rows, so the page stays cheap for large fleets; the ingest figures (the only ones that
scan samples) are cached for ``INGEST_CACHE_SECONDS``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Q
from django.utils import timezone

from apps.hosts.links import host_detail_url
from apps.hosts.models import Host, HostStatus, stale_after
from apps.metrics import read
from apps.metrics.models import Series
from apps.metrics.rollups.jobs import lag_seconds
from apps.metrics.rollups.tiers import BY_NAME, TIERS

DOWN_LIST_LIMIT = 50
GROUP_LIMIT = 100
METRIC_NAMES_LIMIT = 500
INGEST_WINDOW = dt.timedelta(hours=1)
INGEST_CACHE_SECONDS = 30
# A tier counts as lagging when it is this many buckets (plus the rollup lateness window) behind, unless
# FIBERSTACK_ROLLUP_LAG_WARN_SECONDS ({"1m": 900, ...}) sets that tier's threshold.
LAG_WARN_BUCKETS = 2
LAG_WARN_GRACE_SECONDS = 600


def _status_filters(now: dt.datetime) -> dict[str, Q]:
    """The same range conditions as HostQuerySet.filter_status, as Q objects for one aggregate pass."""
    cutoff = now - stale_after()
    return {
        HostStatus.UP: Q(last_seen_at__gte=cutoff),
        HostStatus.DOWN: Q(last_seen_at__lt=cutoff),
        HostStatus.UNKNOWN: Q(last_seen_at__isnull=True),
    }


def status_counts(organization: Any, now: dt.datetime) -> dict[str, int]:
    """Hosts per derived status (up/down/unknown) and the total, in one query."""
    counts = Host.objects.for_org(organization).aggregate(
        total=Count("id"), **{str(s): Count("id", filter=q) for s, q in _status_filters(now).items()}
    )
    return {key: int(value or 0) for key, value in counts.items()}


def down_payloads(organization: Any, now: dt.datetime) -> list[dict[str, Any]]:
    """The down list as the page and ``overview/status.json`` show it."""
    url = host_detail_url(organization.slug)
    return [down_host_payload(host, organization.slug, now, url) for host in down_hosts(organization, now)]


def down_hosts(organization: Any, now: dt.datetime, limit: int = DOWN_LIST_LIMIT) -> list[Host]:
    """Down hosts, longest-silent first (ascending last_seen_at: the (organization, last_seen_at) index)."""
    return list(Host.objects.for_org(organization).filter_status(HostStatus.DOWN, now).order_by("last_seen_at", "id")
                [:limit])


def down_host_payload(host: Host, org_slug: str, now: dt.datetime,
                      url: Callable[[Any], str] | None = None) -> dict[str, Any]:
    """One down host as the overview's live script renders it (JSON-safe); ``url``: a
    ``hosts.links.host_detail_url`` made once for a whole list."""
    assert host.last_seen_at is not None
    return {
        "id": str(host.public_id),
        "label": host.label,
        "environment": host.environment,
        "datacenter": host.datacenter,
        "is_active": host.is_active,
        "last_seen_at": host.last_seen_at.isoformat(),
        "last_seen_text": utc_text(host.last_seen_at),
        "silent_for": human_seconds((now - host.last_seen_at).total_seconds()),
        "url": (url or host_detail_url(org_slug))(host.public_id),
    }


def utc_text(moment: dt.datetime) -> str:
    """"2026-11-22 02:25:05 UTC": the form static/js/overview_live.js also writes."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def human_seconds(seconds: float | None) -> str:
    """A short duration ("45 s", "12 min", "3 h", "2 d"), the same steps as static/js/overview_live.js."""
    if seconds is None:
        return "—"
    s = max(0, round(seconds))
    if s < 120:
        return f"{s} s"
    if s < 7200:
        return f"{round(s / 60)} min"
    if s < 172800:
        return f"{round(s / 3600)} h"
    return f"{round(s / 86400)} d"


def hosts_by_location(organization: Any, now: dt.datetime, limit: int = GROUP_LIMIT) -> list[dict[str, Any]]:
    """Host counts per (environment, datacenter) with their status split; groups with down hosts first."""
    filters = _status_filters(now)
    rows = (
        Host.objects.for_org(organization).order_by().values("environment", "datacenter")
        .annotate(total=Count("id"), **{str(s): Count("id", filter=q) for s, q in filters.items()})
        .order_by("-down", "environment", "datacenter")[:limit]
    )
    return list(rows)


@dataclass(frozen=True, slots=True)
class IngestActivity:
    """Series count, samples received in the window and per-minute sample counts (epoch seconds, count)."""

    series: int
    samples: int
    window_seconds: int
    per_minute: list[tuple[int, int]]

    @property
    def samples_per_second(self) -> float:
        return self.samples / self.window_seconds if self.window_seconds else 0.0


def ingest_activity(organization: Any, now: dt.datetime | None = None) -> IngestActivity:
    """Cached per organization for a few seconds: several on-call screens polling the same page must
    not multiply the sample scan."""
    key = f"dashboards:ingest:{organization.public_id.hex}"
    found = cache.get(key)
    if isinstance(found, tuple) and len(found) == 4:
        return IngestActivity(*found)
    activity = _ingest_activity(organization, now or timezone.now())
    cache.set(key, (activity.series, activity.samples, activity.window_seconds, activity.per_minute),
              INGEST_CACHE_SECONDS)
    return activity


def _ingest_activity(organization: Any, now: dt.datetime) -> IngestActivity:
    """Samples per minute over the last hour: the organization's series pooled into one, counted per
    minute by the metrics read side (1m rollups up to their watermark, raw samples after it), so the
    page never re-joins rollup and raw rows itself."""
    window_start = BY_NAME["1m"].floor(now - INGEST_WINDOW)
    answer = read.window(organization, read.Selector(), window_start, now, step=60, agg="count", tier="1m",
                         pooled=True, now=now)
    per_minute = [(int(t), int(c)) for t, c in answer.points.get(read.POOLED, [])]
    return IngestActivity(
        series=len(answer.series_ids),
        samples=sum(c for _, c in per_minute),
        window_seconds=int((now - window_start).total_seconds()),
        per_minute=per_minute,
    )


def lag_warn_seconds(tier: str) -> int:
    """How far behind ``tier`` may be before the overview warns: the setting's value for the tier, else
    ``LAG_WARN_BUCKETS`` buckets plus ``LAG_WARN_GRACE_SECONDS`` (a tier normally trails by about one bucket)."""
    configured = getattr(settings, "FIBERSTACK_ROLLUP_LAG_WARN_SECONDS", None) or {}
    if tier in configured:
        return int(configured[tier])
    return LAG_WARN_BUCKETS * BY_NAME[tier].seconds + LAG_WARN_GRACE_SECONDS


def rollup_lag(now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Per tier: lag in seconds (None before its first run), the warning threshold and whether it is past
    it (a tier that never ran counts as lagging: nothing rolls up until it does)."""
    lags = lag_seconds(now)
    rows = []
    for tier in TIERS:
        lag = lags.get(tier.name)
        limit = lag_warn_seconds(tier.name)
        rows.append({"tier": tier.name, "seconds": lag, "warn_after": limit, "lagging": lag is None or lag > limit})
    return rows


def metric_names(organization: Any, limit: int = METRIC_NAMES_LIMIT) -> list[str]:
    """Distinct metric names of the organization (the (organization, name) index, in order)."""
    return list(Series.objects.for_org(organization).order_by("name").values_list("name", flat=True)
                .distinct()[:limit])


def default_fleet_metric(names: list[str]) -> str | None:
    """The metric the overview charts across hosts first: CPU, then load, then memory, else the first name."""
    for preferred in ("cpu_usage_active", "system_load1", "mem_used_percent"):
        if preferred in names:
            return preferred
    return names[0] if names else None
