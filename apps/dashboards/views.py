"""The organization overview at /<org_slug>/: what an on-call engineer needs first (how many hosts are
down and which, what is firing, who is on call now and next, the latest alert events, where the fleet
is, whether data is arriving and rollups keep up) and, for admins, the latest audit events. Status
counts and the down list stay current through the hosts websocket; the script
re-reads ``overview/status.json`` when an event changes them."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache

from apps.audit.models import AuditEvent
from apps.core.access import require_role
from apps.core.roles import Role, role_at_least
from apps.dashboards import overview as data
from apps.dashboards import overview_panels as panels
from apps.dashboards.charts import chart_assets, metrics_api_url, series_query
from apps.hosts.models import stale_after

AUDIT_EVENTS_SHOWN = 10


@login_required
def overview(request: HttpRequest, org_slug: str) -> HttpResponse:
    require_role(request, Role.VIEWER)
    organization = request.organization  # type: ignore[attr-defined]
    now = timezone.now()
    is_admin = role_at_least(request.membership.role, Role.ADMIN)  # type: ignore[attr-defined]
    names = data.metric_names(organization)
    fleet_metric = data.default_fleet_metric(names)
    ingest = data.ingest_activity(organization, now)
    rollup_lag = data.rollup_lag(now)
    map_points = panels.host_map(organization, now)
    context = {
        "organization": organization,
        "counts": data.status_counts(organization, now),
        "down_hosts": data.down_payloads(organization, now),
        "locations": data.hosts_by_location(organization, now),
        "alert_counts": panels.alerts_by_severity(organization),
        "on_call": panels.on_call(organization, now),
        "alert_events": panels.recent_alert_events(organization),
        "map_points": map_points,
        "map_markup": panels.map_markup(map_points),
        "map_size": (panels.MAP_WIDTH, panels.MAP_HEIGHT),
        "graticule": panels.graticule(),
        "ingest": ingest,
        "ingest_points": [[t, round(c / 60, 3)] for t, c in ingest.per_minute],
        "rollup_lag": rollup_lag,
        "rollups_behind": [row for row in rollup_lag if row["lagging"] and row["seconds"] is not None],
        "audit_events": (list(AuditEvent.objects.for_org(organization).order_by("-created_at", "-id")
                              [:AUDIT_EVENTS_SHOWN]) if is_admin else None),
        "stale_after_seconds": int(stale_after(organization).total_seconds()),
        "metric_names": names,
        "fleet_metric": fleet_metric,
        "fleet_query": series_query(organization.slug, [fleet_metric]) if fleet_metric else "",
        "api_url": metrics_api_url(),
        **chart_assets(),
    }
    return render(request, "dashboards/overview.html", context)


@never_cache
@login_required
def overview_status(request: HttpRequest, org_slug: str) -> JsonResponse:
    """Status counts and the down list, for the overview's live script (same queries as the page)."""
    require_role(request, Role.VIEWER)
    organization = request.organization  # type: ignore[attr-defined]
    now = timezone.now()
    return JsonResponse({
        "counts": data.status_counts(organization, now),
        "down": data.down_payloads(organization, now),
        "now": now.isoformat(),
    })
