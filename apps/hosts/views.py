"""Inventory pages: the host list (filterable, updated live over a websocket) and a host's detail with
its services and dependency edges. Reads only; writes go through the API or the admin."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from apps.core.access import get_for_member, require_role
from apps.core.params import page_param
from apps.core.roles import Role
from apps.hosts.filters import filter_hosts
from apps.hosts.links import host_detail_url
from apps.hosts.models import Host, HostStatus, ServiceDependency, stale_after

PAGE_SIZE = 100


@login_required
def host_list(request: HttpRequest, org_slug: str) -> HttpResponse:
    require_role(request, Role.VIEWER)
    organization = request.organization  # type: ignore[attr-defined]
    now = timezone.now()
    hosts = Host.objects.for_org(organization).with_status(now).natural_order()
    error = None
    try:
        hosts = filter_hosts(hosts, request.GET, now)
    except ValidationError as exc:
        error = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in exc.message_dict.items())
        hosts = hosts.none()
    page = Paginator(hosts, PAGE_SIZE).get_page(page_param(request.GET))
    page.object_list = list(page.object_list)  # read once: the rows and the key-metrics tag share them
    url = host_detail_url(organization.slug)
    for host in page.object_list:  # per-row values computed here, not by template tags and filters per row
        host.url = url(host.public_id)
        host.last_seen_iso = host.last_seen_at.isoformat() if host.last_seen_at else ""
    query = request.GET.copy()  # every filter (repeated tags too) kept on the pager's links
    query.pop("page", None)
    inventory = Host.objects.for_org(organization)
    context = {
        "organization": organization,
        "page": page,
        "filters": request.GET,
        "query": query.urlencode(),
        "error": error,
        "statuses": HostStatus.values,
        "environments": _distinct(inventory, "environment"),
        "datacenters": _distinct(inventory, "datacenter"),
        "countries": _distinct(inventory, "country"),
        "stale_after_seconds": int(stale_after(organization).total_seconds()),
    }
    return render(request, "hosts/list.html", context, status=400 if error else 200)


def _distinct(queryset: object, field: str) -> list[str]:
    return [v for v in queryset.order_by(field).values_list(field, flat=True).distinct() if v]  # type: ignore[attr-defined]


@login_required
def host_detail(request: HttpRequest, org_slug: str, public_id: str) -> HttpResponse:
    host = get_for_member(request, Host, public_id)
    services = list(host.services.order_by("name"))
    service_ids = [service.pk for service in services]
    edges = (
        ServiceDependency.objects.for_org(host.organization_id)
        .filter(Q(upstream_host=host) | Q(downstream_host=host)
                | Q(upstream_service__in=service_ids) | Q(downstream_service__in=service_ids))
        .select_related("upstream_host", "upstream_service__host", "downstream_host", "downstream_service__host")
    )
    ours = {("host", host.pk), *(("service", pk) for pk in service_ids)}
    depends_on = [edge for edge in edges if tuple(edge.downstream_ref) in ours]
    needed_by = [edge for edge in edges if tuple(edge.upstream_ref) in ours]
    return render(request, "hosts/detail.html", {
        "organization": request.organization,  # type: ignore[attr-defined]
        "host": host,
        "status": host.status(timezone.now()),
        "services": services,
        "depends_on": depends_on,
        "needed_by": needed_by,
    })
