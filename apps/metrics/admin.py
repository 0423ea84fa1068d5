"""Admin for the series catalogue: read-only (series are created by ingest, never by hand, and never
renamed: see apps/metrics/series_services.py); deleting goes through `delete_series` (audited, caches
evicted)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.core.admin import ReadOnlyAdminMixin
from apps.metrics.models import MetricFamily, Series
from apps.metrics.series_services import delete_series


class ReadOnlyAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    allow_delete = True  # as before: an admin may remove a catalogue row by hand


@admin.register(Series)
class SeriesAdmin(ReadOnlyAdmin):
    list_display = ["name", "organization", "host", "type", "unit", "created_at"]
    list_filter = ["organization", "type"]
    search_fields = ["name"]
    list_select_related = ["organization", "host"]
    readonly_fields = ["public_id", "organization", "name", "labels", "host", "type", "help", "unit", "created_at"]
    exclude = ["key_hash"]
    show_full_result_count = False  # COUNT(*) over millions of series would make the list page slow

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        delete_series(series=[obj], actor=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        delete_series(series=queryset, actor=request.user)


@admin.register(MetricFamily)
class MetricFamilyAdmin(ReadOnlyAdmin):
    list_display = ["name", "organization", "type", "unit", "updated_at"]
    list_filter = ["organization", "type"]
    search_fields = ["name", "help"]


from apps.metrics.rollups import admin as rollup_admin  # noqa: E402, F401  (RollupState admin)
