"""Admin for alerts: read-only records of what happened. Acknowledge and resolve are actions that go
through the lifecycle services (compare-and-set, timeline, audit, notifications), never field edits."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.alerts.models import Alert, AlertEvent, AlertGroup
from apps.alerts.services.lifecycle import AlertStateError, acknowledge_alert, resolve_alert
from apps.core.admin import ReadOnlyAdminMixin


class ReadOnlyAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Rows written only by the lifecycle: viewable, never added, edited or deleted here."""


class AlertEventInline(admin.TabularInline):
    model = AlertEvent
    extra = 0
    fields = ["time", "from_state", "to_state", "actor_repr", "value", "threshold", "message"]
    readonly_fields = fields
    ordering = ["time", "pk"]
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _apply(admin_: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet, service: Callable[..., Alert],
           verb: str) -> None:
    done, refused = 0, []
    for alert in queryset.select_related("rule"):
        try:
            service(alert=alert, actor=request.user)
            done += 1
        except AlertStateError as exc:
            refused.append(f"{alert}: {exc}")
    if done:
        admin_.message_user(request, f"{verb} {done} alert(s).", messages.SUCCESS)
    for line in refused:
        admin_.message_user(request, line, messages.WARNING)


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = ["__str__", "state", "severity", "rule", "summary", "started_at", "organization"]
    list_filter = ["state", "severity", "organization"]
    search_fields = ["fingerprint", "summary", "rule__name"]
    list_select_related = ["rule", "organization"]
    inlines = [AlertEventInline]
    actions = ["acknowledge", "resolve"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [field.name for field in Alert._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Acknowledge selected firing alerts")
    def acknowledge(self, request: HttpRequest, queryset: QuerySet) -> None:
        _apply(self, request, queryset, acknowledge_alert, "Acknowledged")

    @admin.action(description="Resolve selected open alerts")
    def resolve(self, request: HttpRequest, queryset: QuerySet) -> None:
        _apply(self, request, queryset, resolve_alert, "Resolved")


@admin.register(AlertGroup)
class AlertGroupAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "state", "last_notified_at", "organization"]
    list_filter = ["state", "organization"]
    search_fields = ["rule__name"]
    list_select_related = ["rule", "organization"]


@admin.register(AlertEvent)
class AlertEventAdmin(ReadOnlyAdmin):
    list_display = ["time", "alert", "from_state", "to_state", "actor_repr", "value", "message"]
    list_filter = ["to_state", "actor_type", "organization"]
    search_fields = ["message", "actor_repr"]
    list_select_related = ["alert"]
