"""The alert list (with its live fragment) and an alert's page, and the three on-call actions: acknowledge,
resolve and silence. Reads come from PostgreSQL only, so the pages work with Redis down (then without
live updates)."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Case, IntegerField, Prefetch, Q, QuerySet, TextField, Value, When
from django.db.models.functions import Cast
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from apps.alerts.choices import AlertState, Severity
from apps.alerts.forms import AlertSilenceForm
from apps.alerts.models import Alert, AlertRule, DeliveryAttempt, Notification
from apps.alerts.services import lifecycle
from apps.alerts.services.suppression import create_silence
from apps.alerts.views.chart import alert_chart, matcher_string
from apps.alerts.views.common import ACT_ROLE, member, page_context
from apps.core.access import get_for_member, require_role
from apps.core.params import choice_param, page_param, uuid_param

PAGE_SIZE = 100
#: The list's tabs: which states each shows. "open" is every state someone may still need to act on.
TABS: dict[str, tuple[str, ...]] = {
    "firing": (AlertState.FIRING,),
    "pending": (AlertState.PENDING,),
    "acknowledged": (AlertState.ACKNOWLEDGED,),
    "resolved": (AlertState.RESOLVED,),
    "open": (AlertState.PENDING, AlertState.FIRING, AlertState.ACKNOWLEDGED),
}
DEFAULT_TAB = "firing"
#: Labels a silence made from an alert leaves out: severity moves between warning and critical on the
#: same alert, and a silence should not end because it did.
SILENCE_SKIP_LABELS = ("severity",)


def _filtered(request: HttpRequest) -> tuple[QuerySet[Alert], dict[str, str], str]:
    """The organization's alerts of the chosen tab and filters, most urgent first."""
    params = request.GET
    tab = choice_param(params, "state", TABS) or DEFAULT_TAB
    alerts = (Alert.objects.for_org(request.organization)  # type: ignore[attr-defined]
              .filter(state__in=TABS[tab]).select_related("rule", "acknowledged_by")
              # The table shows neither these nor the host (the host filter is a join, not a read).
              .defer("description", "baseline", "rule__description", "rule__description_template",
                     "rule__summary_template", "rule__host_tags", "rule__host_names", "rule__labels"))
    filters = {name: params.get(name, "").strip() for name in ("severity", "rule", "host", "q")}
    severity = choice_param(params, "severity", Severity.values)
    if severity is not None:
        alerts = alerts.filter(severity=severity)
    rule = uuid_param(params, "rule")
    if rule is not None:
        alerts = alerts.filter(rule__public_id=rule)
    if filters["host"]:
        alerts = alerts.filter(Q(host__name__icontains=filters["host"]) | Q(labels__host__icontains=filters["host"]))
    if filters["q"]:
        alerts = alerts.annotate(labels_text=Cast("labels", TextField())).filter(
            Q(labels_text__icontains=filters["q"]) | Q(summary__icontains=filters["q"])
            | Q(rule__name__icontains=filters["q"]))
    critical_first = Case(When(severity=Severity.CRITICAL, then=Value(0)), default=Value(1),
                          output_field=IntegerField())
    if tab == "resolved":
        alerts = alerts.order_by("-resolved_at", "-id")
    else:
        alerts = alerts.order_by(critical_first, "-started_at", "-id")
    return alerts, filters, tab


def _list_context(request: HttpRequest) -> dict[str, Any]:
    alerts, filters, tab = _filtered(request)
    page = Paginator(alerts, PAGE_SIZE).get_page(page_param(request.GET))
    query = request.GET.copy()
    for name in ("page", "fragment"):
        query.pop(name, None)
    return page_context(request, page=page, tab=tab, tabs=list(TABS), filters=filters,
                        query=query.urlencode(), silence_form=AlertSilenceForm(), next_url=_list_url(request),
                        alerts_base=reverse("alerts:list", args=[request.organization.slug]))  # type: ignore[attr-defined]


def _list_url(request: HttpRequest) -> str:
    """Where an action from the list returns: the list with its filters (never the fragment)."""
    query = request.GET.copy()
    query.pop("fragment", None)
    return f"{request.path}?{query.urlencode()}" if query else request.path


@login_required
@require_GET
def alert_list(request: HttpRequest, org_slug: str) -> HttpResponse:
    """Firing / pending / acknowledged / resolved alerts with filters; ``?fragment=1`` answers the table
    alone, which static/js/alerts.js re-fetches whenever the alerts websocket says something changed."""
    member(request)
    context = _list_context(request)
    if request.GET.get("fragment"):
        return render(request, "alerts/_alert_table.html", context)
    rules = AlertRule.objects.for_org(request.organization).order_by("name").only("public_id", "name")  # type: ignore[attr-defined]
    return render(request, "alerts/alert_list.html", {**context, "rules": rules, "severities": Severity.values})


@login_required
@require_GET
def alert_detail(request: HttpRequest, org_slug: str, public_id: str) -> HttpResponse:
    """Everything about one alert: rule, labels, timeline, every notification and delivery attempt, the
    anomaly baseline and the value chart around it."""
    alert = get_for_member(request, Alert, public_id)
    rule = alert.rule
    scope = Q(alert=alert) | Q(group_id=alert.group_id) if alert.group_id else Q(alert=alert)
    notifications = (Notification.objects.for_org(alert.organization_id).filter(scope)
                     .select_related("channel").order_by("-created_at", "-id")
                     .prefetch_related(Prefetch("attempt_rows", DeliveryAttempt.objects.order_by("number"))))
    return render(request, "alerts/alert_detail.html", page_context(
        request, alert=alert, rule=rule, events=alert.events.order_by("time", "id"),
        notifications=notifications, baseline=sorted((alert.baseline or {}).items()),
        chart=alert_chart(request.organization, alert), silence_form=AlertSilenceForm(),  # type: ignore[attr-defined]
        silence_query=urlencode({"matchers": matcher_string({m["name"]: m["value"] for m in silence_matchers(alert)})}),
        next_url=request.get_full_path()))


def _back(request: HttpRequest, alert: Alert) -> HttpResponse:
    """Back to the page the button was on (the list with its filters, or the alert's page)."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                                  require_https=request.is_secure()):
        return HttpResponseRedirect(target)  # not redirect(): it would try `target` as a view name first
    return redirect(reverse("alerts:detail", args=[alert.organization.slug, alert.public_id]))


def _act(request: HttpRequest, public_id: str) -> Alert:
    require_role(request, ACT_ROLE)
    return get_for_member(request, Alert, public_id, write=True)


@login_required
@require_POST
def alert_acknowledge(request: HttpRequest, org_slug: str, public_id: str) -> HttpResponse:
    alert = _act(request, public_id)
    try:
        lifecycle.acknowledge_alert(alert=alert, actor=request.user)
    except lifecycle.AlertStateError as exc:
        messages.error(request, f"Could not acknowledge: {exc}")
    else:
        messages.success(request, f"Acknowledged {alert.labels.get('alertname', alert.rule.name)}.")
    return _back(request, alert)


@login_required
@require_POST
def alert_resolve(request: HttpRequest, org_slug: str, public_id: str) -> HttpResponse:
    alert = _act(request, public_id)
    try:
        lifecycle.resolve_alert(alert=alert, actor=request.user)
    except lifecycle.AlertStateError as exc:
        messages.error(request, f"Could not resolve: {exc}")
    else:
        messages.success(request, f"Resolved {alert.labels.get('alertname', alert.rule.name)}.")
    return _back(request, alert)


def silence_matchers(alert: Alert) -> list[dict[str, str]]:
    """Equality matchers on the alert's labels (severity aside): this alert and its recurrences."""
    return [{"name": name, "op": "=", "value": str(value)} for name, value in sorted(alert.labels.items())
            if name not in SILENCE_SKIP_LABELS]


@login_required
@require_POST
def alert_silence(request: HttpRequest, org_slug: str, public_id: str) -> HttpResponse:
    alert = _act(request, public_id)
    form = AlertSilenceForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Could not silence: " + "; ".join(
            f"{field}: {' '.join(errors)}" for field, errors in form.errors.items()))
        return _back(request, alert)
    now = timezone.now()
    try:
        silence = create_silence(organization=alert.organization, matchers=silence_matchers(alert),
                                 ends_at=now + dt.timedelta(seconds=form.cleaned_data["duration"]),
                                 actor=request.user, comment=form.cleaned_data["comment"])
    except ValidationError as exc:
        messages.error(request, f"Could not silence: {' '.join(exc.messages)}")
    else:
        messages.success(request, f"Silenced until {silence.ends_at:%Y-%m-%d %H:%M} UTC.")
    return _back(request, alert)
