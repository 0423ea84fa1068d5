"""The audit log in the Django admin: searchable and filterable, and strictly read-only (the table is
append-only in the database too; the admin just does not offer what would fail)."""

from __future__ import annotations

from django.contrib import admin
from django.template.loader import render_to_string
from django.utils.safestring import SafeString

from apps.audit.export import change_rows
from apps.audit.models import AuditEvent
from apps.core.admin import ReadOnlyAdminMixin


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["created_at", "organization", "actor_repr", "action", "object_display"]
    list_filter = ["action", "actor_type", "organization"]
    date_hierarchy = "created_at"
    search_fields = ["action", "object_repr", "actor_repr", "=request_id"]
    list_select_related = ["organization"]
    # COUNT(*) over the whole log on every changelist is the slow part on a big table.
    show_full_result_count = False
    list_per_page = 100
    fieldsets = [
        (None, {"fields": ["created_at", "organization", "action", "public_id"]}),
        ("Actor", {"fields": ["actor_type", "actor_repr", "actor_user", "actor_token_id"]}),
        ("Object", {"fields": ["object_type", "object_id", "object_repr"]}),
        ("Changes", {"fields": ["changes_display"]}),
        ("Request", {"fields": ["request_id", "ip", "user_agent"]}),
    ]
    readonly_fields = ["created_at", "organization", "action", "public_id", "actor_type", "actor_repr", "actor_user",
                       "actor_token_id", "object_type", "object_id", "object_repr", "changes_display", "request_id",
                       "ip", "user_agent"]

    @admin.display(description="Object")
    def object_display(self, obj: AuditEvent) -> str:
        return f"{obj.object_type} {obj.object_repr}".strip()

    @admin.display(description="Changes (before → after)")
    def changes_display(self, obj: AuditEvent) -> SafeString:
        return render_to_string("audit/_changes.html", {"rows": change_rows(obj.changes)})

