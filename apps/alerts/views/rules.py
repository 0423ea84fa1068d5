"""Alert rule pages: the list, a rule's page, and the create / edit / delete forms (through
apps.alerts.services.config, which validates, audits and makes a changed rule due at once)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.alerts.choices import OPEN_STATES
from apps.alerts.forms import RuleForm
from apps.alerts.models import AlertRule
from apps.alerts.services import config
from apps.alerts.views.common import CONFIGURE_ROLE, DELETE_ROLE, add_service_errors, member, page_context
from apps.alerts.views.preview import Preview, preview_rule
from apps.core.access import get_for_member, require_role


@login_required
@require_GET
def rule_list(request: HttpRequest, org_slug: str) -> HttpResponse:
    member(request)
    rules = (AlertRule.objects.for_org(request.organization)  # type: ignore[attr-defined]
             .annotate(open_alerts=Count("alerts", filter=Q(alerts__state__in=OPEN_STATES)))
             .prefetch_related("channels").order_by("name"))
    return render(request, "alerts/rule_list.html", page_context(request, rules=rules))


@login_required
@require_GET
def rule_detail(request: HttpRequest, org_slug: str, public_id: str) -> HttpResponse:
    rule = get_for_member(request, AlertRule, public_id)
    alerts = rule.alerts.filter(state__in=OPEN_STATES).select_related("host").order_by("-started_at")[:50]
    return render(request, "alerts/rule_detail.html", page_context(
        request, rule=rule, channels=rule.channels.order_by("name"), alerts=alerts))


def _preview(request: HttpRequest, form: RuleForm, rule: AlertRule | None) -> Preview | None:
    """The "Preview" button: validate the rule as typed (the service's own checks, nothing saved) and
    estimate how often it would have fired; None when the form has errors (they are shown instead)."""
    organization = request.organization  # type: ignore[attr-defined]
    candidate = AlertRule(pk=rule.pk if rule else None, organization=organization, **form.service_kwargs())
    if rule is not None and rule.system_key:
        candidate.system_key = rule.system_key
    try:
        config.validate_rule(candidate, channels=form.cleaned_data["channels"])
    except ValidationError as exc:
        add_service_errors(form, exc)
        return None
    return preview_rule(organization, candidate, now=timezone.now())


@login_required
@require_http_methods(["GET", "POST"])
def rule_create(request: HttpRequest, org_slug: str) -> HttpResponse:
    require_role(request, CONFIGURE_ROLE)
    organization = request.organization  # type: ignore[attr-defined]
    form = RuleForm(request.POST or None, organization=organization)
    preview = None
    if request.method == "POST" and "preview" in request.POST and form.is_valid():
        preview = _preview(request, form, None)
    elif request.method == "POST" and form.is_valid():
        data = form.service_kwargs()
        try:
            rule = config.create_rule(organization=organization, actor=request.user,
                                      channels=form.cleaned_data["channels"], **data)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, f"Created the rule {rule.name}.")
            return redirect("alerts:rule-detail", org_slug=org_slug, public_id=rule.public_id)
    return render(request, "alerts/rule_form.html", page_context(request, form=form, rule=None, preview=preview),
                  status=400 if form.errors else 200)


@login_required
@require_http_methods(["GET", "POST"])
def rule_edit(request: HttpRequest, org_slug: str, public_id: str) -> HttpResponse:
    require_role(request, CONFIGURE_ROLE)
    rule = get_for_member(request, AlertRule, public_id, write=True)
    form = RuleForm(request.POST or None, organization=request.organization, rule=rule)  # type: ignore[attr-defined]
    preview = None
    if request.method == "POST" and "preview" in request.POST and form.is_valid():
        preview = _preview(request, form, rule)
    elif request.method == "POST" and form.is_valid():
        try:
            config.update_rule(rule=rule, actor=request.user, channels=form.cleaned_data["channels"],
                               **form.service_kwargs())
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, f"Saved the rule {rule.name}.")
            return redirect("alerts:rule-detail", org_slug=org_slug, public_id=rule.public_id)
    return render(request, "alerts/rule_form.html", page_context(request, form=form, rule=rule, preview=preview),
                  status=400 if form.errors else 200)


@login_required
@require_POST
def rule_delete(request: HttpRequest, org_slug: str, public_id: str) -> HttpResponse:
    require_role(request, DELETE_ROLE)
    rule = get_for_member(request, AlertRule, public_id, write=True)
    try:
        config.delete_rule(rule=rule, actor=request.user)
    except config.SystemRuleError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("alerts:rule-detail", org_slug=org_slug, public_id=rule.public_id)
    messages.success(request, f"Deleted the rule {rule.name}.")
    return redirect("alerts:rules", org_slug=org_slug)
