"""Per-organization retention overrides in the admin (platform admins manage plans and retention, DESIGN
"Users and their doors"); audited like every admin write."""

from __future__ import annotations

from django.contrib import admin

from apps.audit.admin_mixins import AuditedAdminMixin
from apps.logs.models import LogRetention


@admin.register(LogRetention)
class LogRetentionAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ["organization", "logs_days", "events_days", "updated_at"]
    search_fields = ["organization__name", "organization__slug"]
    list_select_related = ["organization"]
    autocomplete_fields = ["organization"]
    audit_action_prefix = "log_retention"
