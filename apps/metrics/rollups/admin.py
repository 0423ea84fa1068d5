"""Admin for rollup progress: one row per tier with its lag, read-only (the jobs own these rows)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils import timezone

from apps.metrics.rollups.models import RollupState


@admin.register(RollupState)
class RollupStateAdmin(admin.ModelAdmin):
    list_display = ["tier", "watermark", "lag", "dirty_from", "last_run_at", "last_duration_ms", "rows_written",
                    "last_summary"]
    readonly_fields = list_display

    @admin.display(description="lag")
    def lag(self, obj: RollupState) -> str:
        lag = obj.lag(timezone.now())
        return "never run" if lag is None else f"{lag.total_seconds():.0f} s"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
