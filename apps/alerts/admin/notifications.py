"""The delivery ledger for platform admins: every notification with each try at sending it. Read-only;
the one write, "retry now", goes through apps.alerts.delivery.services (audited)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.alerts.delivery.services import retry_notifications
from apps.alerts.models import DeliveryAttempt, Notification
from apps.core.admin import ReadOnlyAdminMixin


class DeliveryAttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    extra = 0
    ordering = ["number"]
    fields = ["number", "started_at", "duration_ms", "ok", "response_status", "error", "worker"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["id", "kind", "status", "channel", "alert", "attempts", "next_attempt_at", "delivered_at",
                    "short_error", "organization", "created_at"]
    list_filter = ["status", "kind", "channel__kind", "channel"]
    search_fields = ["=idempotency_key", "channel__name", "last_error"]
    list_select_related = ["channel", "alert", "organization"]
    date_hierarchy = "created_at"
    ordering = ["-created_at"]
    inlines = [DeliveryAttemptInline]
    actions = ["retry_now"]
    readonly_fields = ["public_id", "organization", "channel", "alert", "group", "kind", "status", "payload",
                       "idempotency_key", "attempts", "next_attempt_at", "claimed_until", "last_error",
                       "delivered_at", "suppressed_reason", "created_at", "updated_at"]
    fields = readonly_fields

    @admin.display(description="Last error")
    def short_error(self, obj: Notification) -> str:
        return obj.last_error[:80]

    def has_retry_permission(self, request: HttpRequest) -> bool:
        """Re-sending is a write: it needs the model's change permission although the page is read-only."""
        return request.user.has_perm("alerts.change_notification")

    @admin.action(description="Retry now (failed or waiting notifications)", permissions=["retry"])
    def retry_now(self, request: HttpRequest, queryset: QuerySet) -> None:
        requeued = retry_notifications(notifications=queryset, actor=request.user)
        skipped = queryset.count() - len(requeued)
        self.message_user(request, f"{len(requeued)} notification(s) queued for delivery now.", messages.SUCCESS)
        if skipped:
            self.message_user(request, f"{skipped} skipped: only failed or waiting notifications are retried.",
                              messages.WARNING)
