"""Admin for rollup progress (one row per tier with its lag) and quarantined series ranges; read-only:
the jobs own these rows."""

from __future__ import annotations

from django.contrib import admin
from django.utils import timezone

from apps.core.admin import ReadOnlyAdminMixin
from apps.metrics.rollups.models import RollupQuarantine, RollupState


@admin.register(RollupState)
class RollupStateAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["tier", "watermark", "lag", "dirty_from", "last_run_at", "last_duration_ms", "rows_written",
                    "last_summary"]
    readonly_fields = list_display

    @admin.display(description="lag")
    def lag(self, obj: RollupState) -> str:
        lag = obj.lag(timezone.now())
        return "never run" if lag is None else f"{lag.total_seconds():.0f} s"



@admin.register(RollupQuarantine)
class RollupQuarantineAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Series ranges the rollup job could not compute and skipped; read-only (the job writes and
    resolves them). The error says what the database refused."""

    list_display = ["tier", "series", "organization", "bucket_from", "bucket_to", "attempts", "first_seen_at",
                    "last_seen_at", "resolved_at", "short_error"]
    list_filter = ["tier", ("resolved_at", admin.EmptyFieldListFilter)]
    list_select_related = ["series__organization"]
    readonly_fields = ["tier", "series", "bucket_from", "bucket_to", "attempts", "first_seen_at", "last_seen_at",
                       "resolved_at", "error"]

    @admin.display(description="organization")
    def organization(self, obj: RollupQuarantine) -> str:
        return str(obj.series.organization) if obj.series is not None else "(series deleted)"

    @admin.display(description="error")
    def short_error(self, obj: RollupQuarantine) -> str:
        return obj.error.splitlines()[0][:120] if obj.error else ""
