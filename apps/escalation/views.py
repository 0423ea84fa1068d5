"""The on-call page at /<org_slug>/oncall/: each schedule's final schedule for the next two weeks as a
calendar (rendered on the server from `apps.escalation.calendar`, so it needs neither JavaScript nor
Redis), who is on call now, the overrides (editors add and remove them through the services, like the
API) and the escalation policies with their steps (read-only here; changed in the admin or the API)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from apps.core.access import get_for_member, require_role
from apps.core.roles import Role, role_at_least
from apps.escalation import services
from apps.escalation.calendar import HORIZON, schedule_views
from apps.escalation.forms import OverrideForm
from apps.escalation.models import EscalationPolicy, EscalationStep, ScheduleOverride

#: Add and remove overrides (the API's create_override / delete_override need the same).
CHANGE_ROLE = Role.EDITOR
OVERRIDES_SHOWN = 200


def _page(request: HttpRequest, form: OverrideForm | None = None, status: int = 200) -> HttpResponse:
    organization = request.organization  # type: ignore[attr-defined]
    now = timezone.now()
    can_change = role_at_least(request.membership.role, CHANGE_ROLE)  # type: ignore[attr-defined]
    overrides = (ScheduleOverride.objects.for_org(organization).filter(end__gt=now)
                 .select_related("schedule", "user", "created_by").order_by("start", "pk")[:OVERRIDES_SHOWN])
    steps = EscalationStep.objects.order_by("position").select_related("schedule").prefetch_related(
        "users", "channels")
    policies = (EscalationPolicy.objects.for_org(organization).order_by("name")
                .prefetch_related(Prefetch("steps", queryset=steps)))
    if can_change and form is None:
        form = OverrideForm(organization=organization)
    return render(request, "escalation/oncall.html", {
        "organization": organization,
        "now": now,
        "horizon_days": HORIZON.days,
        "schedules": schedule_views(organization, now, with_days=True),
        "overrides": list(overrides),
        "policies": list(policies),
        "can_change": can_change,
        "form": form if can_change else None,
    }, status=status)


@login_required
@require_GET
def oncall(request: HttpRequest, org_slug: str) -> HttpResponse:
    require_role(request, Role.VIEWER)
    return _page(request)


@login_required
@require_POST
def override_create(request: HttpRequest, org_slug: str) -> HttpResponse:
    require_role(request, CHANGE_ROLE)
    form = OverrideForm(request.POST, organization=request.organization)  # type: ignore[attr-defined]
    if form.is_valid():
        data: dict[str, Any] = form.cleaned_data
        try:
            override = services.create_override(schedule=data["schedule"], user=data["user"], start=data["start"],
                                                 end=data["end"], actor=request.user)
        except ValidationError as exc:
            for name, errors in exc.message_dict.items():
                form.add_error(name if name in form.fields else None, errors)
        else:
            messages.success(request, f"{override.user.get_username()} covers {override.schedule.name} "
                                      f"from {override.start:%Y-%m-%d %H:%M} to {override.end:%Y-%m-%d %H:%M} UTC.")
            return redirect("escalation:oncall", org_slug=org_slug)
    return _page(request, form=form, status=400)


@login_required
@require_POST
def override_delete(request: HttpRequest, org_slug: str, public_id: str) -> HttpResponse:
    override = get_for_member(request, ScheduleOverride, public_id, write=True)
    services.delete_override(override=override, actor=request.user)
    messages.success(request, "Override removed.")
    return redirect("escalation:oncall", org_slug=org_slug)
