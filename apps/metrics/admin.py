"""Admin for the series catalogue: read-only (series are created by ingest, never by hand)."""

from __future__ import annotations

from django.contrib import admin

from apps.core.admin import ReadOnlyAdminMixin
from apps.metrics.models import MetricFamily, Series


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


@admin.register(MetricFamily)
class MetricFamilyAdmin(ReadOnlyAdmin):
    list_display = ["name", "organization", "type", "unit", "updated_at"]
    list_filter = ["organization", "type"]
    search_fields = ["name", "help"]


from apps.metrics.rollups import admin as rollup_admin  # noqa: E402, F401  (RollupState admin)
