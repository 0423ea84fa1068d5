"""Silence and maintenance pages: active / pending / expired silences (create, expire) and maintenance
windows with their next occurrences (create, edit, delete), through apps.alerts.services.suppression.
Both are on-call work, so editors may do all of it, as through the API."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.alerts.forms import MaintenanceWindowForm, SilenceForm
from apps.alerts.models import MaintenanceWindow, Silence
from apps.alerts.services import suppression as services
from apps.alerts.suppression import next_occurrences, occurrence_covering
from apps.alerts.views.common import ACT_ROLE, add_service_errors, member, page_context
from apps.core.access import get_for_member, require_role

EXPIRED_SHOWN = 50
NEXT_OCCURRENCES = 3


@login_required
@require_GET
def silence_list(request: HttpRequest, org_slug: str) -> HttpResponse:
    member(request)
    organization = request.organization  # type: ignore[attr-defined]
    now = timezone.now()
    silences = Silence.objects.for_org(organization).select_related("created_by")
    windows = MaintenanceWindow.objects.for_org(organization).prefetch_related("hosts", "services__host").order_by(
        "name")
    window_rows = [(window, occurrence_covering(window, now), next_occurrences(window, now, NEXT_OCCURRENCES))
                   for window in windows]
    return render(request, "alerts/silence_list.html", page_context(
        request,
        active=silences.filter(starts_at__lte=now, ends_at__gt=now).order_by("ends_at"),
        pending=silences.filter(starts_at__gt=now).order_by("starts_at"),
        expired=silences.filter(ends_at__lte=now).order_by("-ends_at")[:EXPIRED_SHOWN],
        windows=window_rows))


def _prefill(request: HttpRequest) -> dict[str, str]:
    """``?matchers=…`` pre-fills the form (links from an alert page)."""
    return {"matchers": request.GET["matchers"]} if request.GET.get("matchers") else {}


@login_required
@require_http_methods(["GET", "POST"])
def silence_create(request: HttpRequest, org_slug: str) -> HttpResponse:
    require_role(request, ACT_ROLE)
    form = SilenceForm(request.POST or None, initial=_prefill(request))
    if request.method == "POST" and form.is_valid():
        try:
            silence = services.create_silence(organization=request.organization, actor=request.user,  # type: ignore[attr-defined]
                                              **form.service_kwargs(timezone.now()))
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, f"Silenced until {silence.ends_at:%Y-%m-%d %H:%M} UTC.")
            return redirect("alerts:silences", org_slug=org_slug)
    return render(request, "alerts/silence_form.html", page_context(request, form=form),
                  status=400 if form.errors else 200)


@login_required
@require_POST
def silence_expire(request: HttpRequest, org_slug: str, public_id: str) -> HttpResponse:
    require_role(request, ACT_ROLE)
    silence = get_for_member(request, Silence, public_id, write=True)
    services.expire_silence(silence=silence, actor=request.user)
    messages.success(request, "Silence expired.")
    return redirect("alerts:silences", org_slug=org_slug)


@login_required
@require_http_methods(["GET", "POST"])
def window_create(request: HttpRequest, org_slug: str) -> HttpResponse:
    require_role(request, ACT_ROLE)
    organization = request.organization  # type: ignore[attr-defined]
    form = MaintenanceWindowForm(request.POST or None, organization=organization)
    if request.method == "POST" and form.is_valid():
        try:
            window = services.create_maintenance_window(organization=organization, actor=request.user,
                                                        **form.service_kwargs())
        except ValidationError as exc:
            add_service_errors(form, exc, MaintenanceWindowForm.SERVICE_NAMES)
        else:
            messages.success(request, f"Planned the maintenance window {window.name}.")
            return redirect("alerts:silences", org_slug=org_slug)
    return render(request, "alerts/window_form.html", page_context(request, form=form, window=None),
                  status=400 if form.errors else 200)


@login_required
@require_http_methods(["GET", "POST"])
def window_edit(request: HttpRequest, org_slug: str, public_id: str) -> HttpResponse:
    require_role(request, ACT_ROLE)
    window = get_for_member(request, MaintenanceWindow, public_id, write=True)
    form = MaintenanceWindowForm(request.POST or None, organization=request.organization, window=window)  # type: ignore[attr-defined]
    if request.method == "POST" and form.is_valid():
        try:
            services.update_maintenance_window(window=window, actor=request.user, **form.service_kwargs())
        except ValidationError as exc:
            add_service_errors(form, exc, MaintenanceWindowForm.SERVICE_NAMES)
        else:
            messages.success(request, f"Saved the maintenance window {window.name}.")
            return redirect("alerts:silences", org_slug=org_slug)
    return render(request, "alerts/window_form.html", page_context(request, form=form, window=window),
                  status=400 if form.errors else 200)


@login_required
@require_POST
def window_delete(request: HttpRequest, org_slug: str, public_id: str) -> HttpResponse:
    require_role(request, ACT_ROLE)
    window = get_for_member(request, MaintenanceWindow, public_id, write=True)
    services.delete_maintenance_window(window=window, actor=request.user)
    messages.success(request, f"Deleted the maintenance window {window.name}.")
    return redirect("alerts:silences", org_slug=org_slug)
