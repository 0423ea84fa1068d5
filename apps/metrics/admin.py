"""Admin for the series catalogue: read-only (series are created by ingest, never by hand)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from apps.metrics.models import MetricFamily, Series


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Series)
class SeriesAdmin(ReadOnlyAdmin):
    list_display = ["name", "organization", "host", "type", "unit", "created_at"]
    list_filter = ["organization", "type"]
    search_fields = ["name"]
    list_select_related = ["organization", "host"]
    readonly_fields = ["public_id", "organization", "name", "labels", "host", "type", "help", "unit", "created_at"]
    exclude = ["key_hash"]
    show_full_result_count = False  # COUNT(*) over millions of series would make the list page slow


@admin.register(MetricFamily)
class MetricFamilyAdmin(ReadOnlyAdmin):
    list_display = ["name", "organization", "type", "unit", "updated_at"]
    list_filter = ["organization", "type"]
    search_fields = ["name", "help"]


from apps.metrics.rollups import admin as rollup_admin  # noqa: E402, F401  (RollupState admin)
