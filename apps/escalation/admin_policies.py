"""Admin for escalation policies (steps edited as the API's JSON list, checked by the API's serializer),
rule and group routes, contact methods, and read-only views of runs and on-call assignments. Every write goes
through apps.escalation.policy_services (group routes: group_services), so it is validated and audited exactly like
the API."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.core.admin import ReadOnlyAdminMixin
from apps.escalation import group_services, verification
from apps.escalation import policy_services as services
from apps.escalation.admin_json import clean_json_children
from apps.escalation.api.policy_serializers import StepSerializer, step_data
from apps.escalation.models import (
    ContactMethod,
    EscalationPolicy,
    EscalationRun,
    GroupEscalationRun,
    GroupRoute,
    OnCallAssignment,
    RulePolicy,
)

STEPS_HELP = ('JSON list, as in the API: [{"action": "notify_schedule", "schedule": "<schedule id>", '
              '"wait_seconds": 300}, {"action": "notify_user", "users": ["alice"]}, '
              '{"action": "notify_channel", "channels": ["<channel id>"]}]')


class PolicyForm(forms.ModelForm):
    steps_json = forms.CharField(label="Steps", widget=forms.Textarea(attrs={"rows": 12, "cols": 100}),
                                 required=False, help_text=STEPS_HELP)

    class Meta:
        model = EscalationPolicy
        fields = ["organization", "name", "description", "repeat_count", "ack_timeout_seconds"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk and not self.is_bound:
            steps = [{k: v for k, v in services.step_snapshot(s).items() if k != "position" and v not in (None, [])}
                     for s in self.instance.steps.order_by("position")]
            self.initial["steps_json"] = json.dumps(steps, indent=2)

    def clean(self) -> dict[str, Any]:
        return clean_json_children(self, super().clean(), field="steps_json", serializer_class=StepSerializer,
                                   convert=step_data, into="steps")


@admin.register(EscalationPolicy)
class EscalationPolicyAdmin(admin.ModelAdmin):
    form = PolicyForm
    list_display = ["name", "organization", "repeat_count", "ack_timeout_seconds", "updated_at"]
    list_filter = ["organization"]
    search_fields = ["name"]
    list_select_related = ["organization"]

    def get_readonly_fields(self, request: HttpRequest, obj: EscalationPolicy | None = None) -> list[str]:
        return ["organization"] if obj is not None else []

    def save_model(self, request: HttpRequest, obj: EscalationPolicy, form: Any, change: bool) -> None:
        data = form.cleaned_data
        fields = {"name": data["name"], "description": data["description"], "repeat_count": data["repeat_count"],
                  "ack_timeout_seconds": data["ack_timeout_seconds"], "steps": data.get("steps", [])}
        if change:
            saved = services.update_policy(policy=obj, actor=request.user, **fields)
        else:
            saved = services.create_policy(organization=data["organization"], actor=request.user, **fields)
        obj.__dict__.update(saved.__dict__)

    def delete_model(self, request: HttpRequest, obj: EscalationPolicy) -> None:
        services.delete_policy(policy=obj, actor=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for policy in queryset:
            services.delete_policy(policy=policy, actor=request.user)


class RouteForm(forms.ModelForm):
    class Meta:
        model = RulePolicy
        fields = ["rule", "policy"]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        rule, policy = data.get("rule"), data.get("policy")
        if rule is not None and policy is not None and rule.organization_id != policy.organization_id:
            self.add_error("policy", "The policy must belong to the rule's organization.")
        return data

    def _post_clean(self) -> None:
        """The service sets the organization and checks the rest."""


@admin.register(RulePolicy)
class RulePolicyAdmin(admin.ModelAdmin):
    form = RouteForm
    list_display = ["rule", "policy", "organization"]
    list_filter = ["organization"]
    list_select_related = ["rule", "policy", "organization"]
    raw_id_fields = ["rule"]

    def get_readonly_fields(self, request: HttpRequest, obj: RulePolicy | None = None) -> list[str]:
        return ["rule"] if obj is not None else []

    def save_model(self, request: HttpRequest, obj: RulePolicy, form: Any, change: bool) -> None:
        data = form.cleaned_data
        saved = services.route_rule(rule=data.get("rule") or obj.rule, policy=data["policy"], actor=request.user)
        obj.__dict__.update(saved.__dict__)

    def delete_model(self, request: HttpRequest, obj: RulePolicy) -> None:
        services.unroute_rule(route=obj, actor=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for route in queryset.select_related("rule", "policy"):
            services.unroute_rule(route=route, actor=request.user)


class ContactForm(forms.ModelForm):
    class Meta:
        model = ContactMethod
        fields = ["organization", "user", "kind", "address", "url", "delay_seconds", "enabled", "verified"]

    def clean(self) -> dict[str, Any]:
        """The service's checks as form errors (it re-checks them when saving)."""
        data = super().clean()
        if data.get("kind") == "email" and not data.get("address"):
            self.add_error("address", "An email contact method needs an address.")
        elif data.get("kind") in ("webhook", "slack") and not data.get("url"):
            self.add_error("url", "This contact method needs a url.")
        return data

    def _post_clean(self) -> None:
        """The service sets the channel and validates the rest when saving."""


@admin.register(ContactMethod)
class ContactMethodAdmin(admin.ModelAdmin):
    form = ContactForm
    list_display = ["user", "kind", "destination", "delay_seconds", "enabled", "verified", "organization"]
    list_filter = ["organization", "kind", "verified"]
    search_fields = ["user__username", "address", "url"]
    list_select_related = ["user", "organization"]
    raw_id_fields = ["user"]
    actions = ["mark_verified", "send_verification"]

    def get_readonly_fields(self, request: HttpRequest, obj: ContactMethod | None = None) -> list[str]:
        return ["organization", "user", "verified_at", "verification_sent_at"] if obj is not None else []

    @admin.action(description="Mark the selected contact methods verified")
    def mark_verified(self, request: HttpRequest, queryset: QuerySet) -> None:
        """An admin vouches for the addresses (audited as via=admin)."""
        done = sum(verification.verify_contact_method(method=m, actor=request.user, via="admin")
                   for m in queryset.filter(verified=False))
        self.message_user(request, f"Marked {done} contact method(s) verified.")

    @admin.action(description="Send the selected contact methods their verification link")
    def send_verification(self, request: HttpRequest, queryset: QuerySet) -> None:
        sent = 0
        for method in queryset.filter(verified=False, enabled=True):
            verification.send_verification(method=method, actor=request.user)
            sent += 1
        self.message_user(request, f"Sent {sent} verification message(s).")

    def save_model(self, request: HttpRequest, obj: ContactMethod, form: Any, change: bool) -> None:
        data = dict(form.cleaned_data)
        fields = {k: data[k] for k in ("kind", "address", "url", "delay_seconds", "enabled", "verified")}
        if change:
            saved = services.update_contact_method(method=obj, actor=request.user, **fields)
        else:
            saved = services.create_contact_method(organization=data["organization"], user=data["user"],
                                                   actor=request.user, **fields)
        obj.__dict__.update(saved.__dict__)

    def delete_model(self, request: HttpRequest, obj: ContactMethod) -> None:
        services.delete_contact_method(method=obj, actor=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for method in queryset.select_related("user"):
            services.delete_contact_method(method=method, actor=request.user)


class ReadOnlyAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Engine records: written by the engine only."""


@admin.register(EscalationRun)
class EscalationRunAdmin(ReadOnlyAdmin):
    list_display = ["alert", "policy", "status", "step_index", "repeat", "next_step_at", "organization"]
    list_filter = ["status", "organization"]
    list_select_related = ["alert", "policy", "organization"]


@admin.register(OnCallAssignment)
class OnCallAssignmentAdmin(ReadOnlyAdmin):
    list_display = ["at", "username", "reason", "schedule", "alert_public_id", "step_index", "repeat", "suppressed"]
    list_filter = ["organization", "reason", "suppressed"]
    search_fields = ["username", "alert_public_id"]
    list_select_related = ["schedule"]


class GroupRouteForm(forms.ModelForm):
    class Meta:
        model = GroupRoute
        fields = ["organization", "name", "position", "matchers", "rule", "policy", "enabled"]

    def clean(self) -> dict[str, Any]:
        """The service's checks as form errors (it re-checks them when saving)."""
        data = super().clean()
        organization = data.get("organization") or getattr(self.instance, "organization", None)
        for name in ("rule", "policy"):
            value = data.get(name)
            if value is not None and organization is not None and value.organization_id != organization.pk:
                self.add_error(name, f"The {name} must belong to the route's organization.")
        if "matchers" in data:
            try:
                data["matchers"] = group_services.clean_matchers(data["matchers"] or {})
            except ValidationError as exc:
                self.add_error("matchers", exc.message_dict["matchers"])
        return data

    def _post_clean(self) -> None:
        """The service validates and saves (a duplicate name becomes an error there)."""


@admin.register(GroupRoute)
class GroupRouteAdmin(admin.ModelAdmin):
    """Group routes: written through apps.escalation.group_services, audited like the API."""

    form = GroupRouteForm
    list_display = ["name", "position", "matchers", "rule", "policy", "enabled", "organization"]
    list_filter = ["organization", "enabled"]
    search_fields = ["name"]
    list_select_related = ["rule", "policy", "organization"]
    raw_id_fields = ["rule"]
    ordering = ["organization", "position", "created_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: GroupRoute | None = None) -> list[str]:
        return ["organization"] if obj is not None else []

    def save_model(self, request: HttpRequest, obj: GroupRoute, form: Any, change: bool) -> None:
        data = form.cleaned_data
        fields = {k: data[k] for k in ("name", "position", "matchers", "policy", "enabled")}
        if change:
            saved = group_services.update_group_route(route=obj, actor=request.user, rule=data.get("rule"), **fields)
        else:
            saved = group_services.create_group_route(organization=data["organization"], actor=request.user,
                                                      rule=data.get("rule"), **fields)
        obj.__dict__.update(saved.__dict__)

    def delete_model(self, request: HttpRequest, obj: GroupRoute) -> None:
        group_services.delete_group_route(route=obj, actor=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for route in queryset.select_related("rule", "policy"):
            group_services.delete_group_route(route=route, actor=request.user)


@admin.register(GroupEscalationRun)
class GroupEscalationRunAdmin(ReadOnlyAdmin):
    list_display = ["group", "route", "policy", "status", "step_index", "repeat", "next_step_at", "organization"]
    list_filter = ["status", "organization"]
    list_select_related = ["group__rule", "route", "policy", "organization"]
