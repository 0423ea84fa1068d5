"""Admin for rollup progress: one row per tier with its lag, read-only (the jobs own these rows)."""

from __future__ import annotations

from django.contrib import admin
from django.utils import timezone

from apps.core.admin import ReadOnlyAdminMixin
from apps.metrics.rollups.models import RollupState


@admin.register(RollupState)
class RollupStateAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["tier", "watermark", "lag", "dirty_from", "last_run_at", "last_duration_ms", "rows_written",
                    "last_summary"]
    readonly_fields = list_display

    @admin.display(description="lag")
    def lag(self, obj: RollupState) -> str:
        lag = obj.lag(timezone.now())
        return "never run" if lag is None else f"{lag.total_seconds():.0f} s"

