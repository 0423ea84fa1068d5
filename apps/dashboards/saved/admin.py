"""Platform admins see and correct saved dashboards; adds, edits and deletes go through the services
(validated, audited in the same transaction), like page and API changes."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.dashboards.saved import services
from apps.dashboards.saved.models import SavedDashboard


@admin.register(SavedDashboard)
class SavedDashboardAdmin(admin.ModelAdmin):
    list_display = ["name", "organization", "updated_at"]
    list_filter = ["organization"]
    search_fields = ["name", "description"]
    list_select_related = ["organization"]
    autocomplete_fields = ["organization"]
    readonly_fields = ["public_id", "created_at", "updated_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: SavedDashboard | None = None) -> list[str]:
        fields = list(super().get_readonly_fields(request, obj))
        return [*fields, "organization"] if obj is not None else fields

    def save_model(self, request: HttpRequest, obj: SavedDashboard, form: Any, change: bool) -> None:
        fields = {name: getattr(obj, name) for name in services.EDITABLE_FIELDS}
        if change:
            saved = services.update_dashboard(dashboard=obj, actor=request.user, **fields)
        else:
            saved = services.create_dashboard(organization=obj.organization, actor=request.user, **fields)
        obj.pk, obj.public_id = saved.pk, saved.public_id

    def delete_model(self, request: HttpRequest, obj: SavedDashboard) -> None:
        services.delete_dashboard(dashboard=obj, actor=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for dashboard in queryset:
            services.delete_dashboard(dashboard=dashboard, actor=request.user)
