"""Saved dashboard pages under /<org_slug>/dashboards/: list, create, view, edit, delete.

Viewers see, editors create and edit, admins delete; the buttons a role may not use are not shown and
their POSTs are refused (403, nothing written). A dashboard's URL is its share link: members of the
organization open it, ``?range=6h`` fixes the range of every chart so a link reproduces the view. The page's
widgets refresh live: ``ws/<org>/dashboards/live/`` says which metric names got new data
(apps/metrics/live_dashboards.py) and static/js/charts.js re-fetches the newest part of those widgets."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from apps.core.access import get_for_member, require_role
from apps.core.params import choice_param
from apps.core.roles import Role, role_at_least
from apps.dashboards.charts import chart_assets, metrics_api_url
from apps.dashboards.saved import services
from apps.dashboards.saved.forms import DashboardForm, widget_formset, widgets_of
from apps.dashboards.saved.models import SavedDashboard
from apps.dashboards.saved.widgets import RANGES
from apps.metrics.live_dashboards import dashboards_live_path


def _can(request: HttpRequest, role: str) -> bool:
    return role_at_least(request.membership.role, role)  # type: ignore[attr-defined]


@login_required
def dashboard_list(request: HttpRequest, org_slug: str) -> HttpResponse:
    require_role(request, Role.VIEWER)
    organization = request.organization  # type: ignore[attr-defined]
    return render(request, "dashboards/saved/list.html", {
        "organization": organization,
        "dashboards": SavedDashboard.objects.for_org(organization).order_by("name"),
        "can_edit": _can(request, Role.EDITOR),
    })


def widget_chart(org_slug: str, index: int, widget: dict[str, Any], range_override: str | None) -> dict[str, Any]:
    """One widget as the chart markup of static/js/charts.js: the read API filter and the range to draw."""
    params = [("org", org_slug), ("name", widget["metric"])]
    if widget.get("labels"):
        params.append(("labels", widget["labels"]))
    range_name = range_override or widget.get("range") or "1h"
    return {**widget, "key": f"w{index}", "query": urlencode(params), "range_name": range_name,
            "range_seconds": RANGES.get(range_name, 3600), "width": widget.get("width") or 6}


@login_required
def dashboard_detail(request: HttpRequest, org_slug: str, public_id: str) -> HttpResponse:
    dashboard = get_for_member(request, SavedDashboard, public_id)
    range_override = choice_param(request.GET, "range", RANGES)
    return render(request, "dashboards/saved/detail.html", {
        "organization": request.organization,  # type: ignore[attr-defined]
        "dashboard": dashboard,
        "charts": [widget_chart(org_slug, i, w, range_override) for i, w in enumerate(dashboard.widgets)],
        "ranges": list(RANGES),
        "range_override": range_override,
        "can_edit": _can(request, Role.EDITOR),
        "can_delete": _can(request, Role.ADMIN),
        "api_url": metrics_api_url(),
        "live_path": dashboards_live_path(org_slug),
        **chart_assets(),
    })


@login_required
def dashboard_create(request: HttpRequest, org_slug: str) -> HttpResponse:
    require_role(request, Role.EDITOR)
    return _edit(request, None)


@login_required
def dashboard_edit(request: HttpRequest, org_slug: str, public_id: str) -> HttpResponse:
    return _edit(request, get_for_member(request, SavedDashboard, public_id, write=True))


def _edit(request: HttpRequest, dashboard: SavedDashboard | None) -> HttpResponse:
    organization = request.organization  # type: ignore[attr-defined]
    if request.method == "POST":
        form = DashboardForm(request.POST)
        formset = widget_formset(request.POST)
        if form.is_valid() and formset.is_valid():
            fields = {**form.cleaned_data, "widgets": widgets_of(formset)}
            try:
                if dashboard is None:
                    dashboard = services.create_dashboard(organization=organization, actor=request.user, **fields)
                else:
                    dashboard = services.update_dashboard(dashboard=dashboard, actor=request.user, **fields)
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                messages.success(request, f"Saved {dashboard.name}.")
                return redirect("dashboards:saved:detail", organization.slug, dashboard.public_id)
        status = 400
    else:
        initial = {"name": dashboard.name, "description": dashboard.description} if dashboard else None
        form = DashboardForm(initial=initial)
        formset = widget_formset(widgets=dashboard.widgets if dashboard else None)
        status = 200
    return render(request, "dashboards/saved/form.html", {
        "organization": organization, "dashboard": dashboard, "form": form, "formset": formset,
    }, status=status)


@require_POST
@login_required
def dashboard_delete(request: HttpRequest, org_slug: str, public_id: str) -> HttpResponse:
    dashboard = get_for_member(request, SavedDashboard, public_id)
    require_role(request, Role.ADMIN)
    name = dashboard.name
    services.delete_dashboard(dashboard=dashboard, actor=request.user)
    messages.success(request, f"Deleted {name}.")
    return redirect("dashboards:saved:list", request.organization.slug)  # type: ignore[attr-defined]
