"""The overview's alerting and on-call panels and its host map, as plain data: firing alerts per
severity, who is on call now and next per schedule, the newest alert events, and the hosts that have
coordinates as points of an equirectangular plot. Each panel is a fixed number of indexed queries
whatever the number of alerts, schedules or hosts, so the page's query count stays constant."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.db.models import Count
from django.urls import reverse
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from apps.alerts.choices import AlertState, Severity
from apps.alerts.models import Alert, AlertEvent
from apps.escalation.calendar import schedule_views, source_label
from apps.hosts.links import host_detail_url
from apps.hosts.models import Host, stale_after

RECENT_EVENTS = 20
MAP_POINTS_LIMIT = 5000
MAP_WIDTH, MAP_HEIGHT = 720, 360
#: On-call "next" looks this far ahead (the overview only needs the next handoff, not a calendar).
ONCALL_LOOKAHEAD = dt.timedelta(days=14)


def alerts_by_severity(organization: Any) -> list[dict[str, Any]]:
    """Firing and acknowledged alerts per severity (critical first), each linked to the filtered list."""
    counts = {(row["state"], row["severity"]): row["n"] for row in
              Alert.objects.for_org(organization).filter(state__in=(AlertState.FIRING, AlertState.ACKNOWLEDGED))
              .order_by().values("state", "severity").annotate(n=Count("id"))}
    base = reverse("alerts:list", args=[organization.slug])
    rows = []
    for severity in (Severity.CRITICAL, Severity.WARNING):
        rows.append({
            "severity": str(severity),
            "firing": counts.get((AlertState.FIRING, severity), 0),
            "acknowledged": counts.get((AlertState.ACKNOWLEDGED, severity), 0),
            "url": f"{base}?{urlencode({'state': 'firing', 'severity': severity})}",
            "acknowledged_url": f"{base}?{urlencode({'state': 'acknowledged', 'severity': severity})}",
        })
    return rows


def recent_alert_events(organization: Any, limit: int = RECENT_EVENTS) -> list[AlertEvent]:
    """The newest alert events of the organization (the (organization, -time) index), with their alerts."""
    return list(AlertEvent.objects.filter(organization=organization).select_related("alert", "alert__rule")
                .order_by("-time", "-id")[:limit])


def on_call(organization: Any, now: dt.datetime) -> list[dict[str, Any]]:
    """Per schedule: who is on call now (and why), until when, and who takes over next."""
    rows = []
    for view in schedule_views(organization, now, ONCALL_LOOKAHEAD):
        rows.append({
            "schedule": view.schedule,
            "now": [user.get_username() for user in view.on_call],
            "source": source_label(view.source),
            "until": view.until,
            "next": view.next_shift.user.get_username() if view.next_shift else None,
            "next_at": view.next_shift.start if view.next_shift else None,
        })
    return rows


@dataclass(frozen=True)
class MapPoint:
    """A host on the map: SVG coordinates of its latitude/longitude, its status and its page."""

    x: float
    y: float
    status: str
    label: str
    url: str


def project(latitude: float, longitude: float) -> tuple[float, float]:
    """Equirectangular: longitude -180..180 -> x 0..width, latitude 90..-90 -> y 0..height."""
    return (round((longitude + 180) / 360 * MAP_WIDTH, 1), round((90 - latitude) / 180 * MAP_HEIGHT, 1))


def host_map(organization: Any, now: dt.datetime, limit: int = MAP_POINTS_LIMIT) -> list[MapPoint]:
    """Hosts with coordinates as map points, down hosts last so that they are drawn on top."""
    cutoff = now - stale_after(organization)
    rows = (Host.objects.for_org(organization).filter(latitude__isnull=False, longitude__isnull=False)
            .order_by("name", "id").values_list("public_id", "name", "display_name", "latitude", "longitude",
                                                "last_seen_at")[:limit])
    url = host_detail_url(organization.slug)
    points = []
    for public_id, name, display_name, latitude, longitude, last_seen_at in rows:
        status = "unknown" if last_seen_at is None else ("up" if last_seen_at >= cutoff else "down")
        x, y = project(latitude, longitude)
        points.append(MapPoint(x, y, status, display_name or name, url(public_id)))
    order = {"unknown": 0, "up": 1, "down": 2}
    points.sort(key=lambda point: order[point.status])
    return points


def map_markup(points: list[MapPoint]) -> SafeString:
    """The map's markers as SVG, written here rather than by a template loop: a fleet puts thousands of
    points on the map, and the template engine's per-variable cost made this the page's slowest part."""
    return mark_safe("".join(  # noqa: S308 - the label is escaped; the rest are numbers, statuses and our URLs
        f'<a href="{p.url}"><circle class="{p.status}" cx="{p.x}" cy="{p.y}" r="4" data-status="{p.status}">'
        f"<title>{escape(p.label)} ({p.status})</title></circle></a>" for p in points))


def graticule() -> dict[str, list[float]]:
    """Meridians every 30° and parallels every 30°, in SVG coordinates."""
    return {"x": [project(0, lon)[0] for lon in range(-150, 180, 30)],
            "y": [project(lat, 0)[1] for lat in range(-60, 90, 30)]}
