"""Bookkeeping of the rollup jobs: one row per tier (imported by ``apps.metrics.models`` so Django
registers it in the metrics app)."""

from __future__ import annotations

import datetime as dt

from django.db import models


class RollupState(models.Model):
    """Progress of one rollup tier: its watermark (source data before it is reflected in the tier,
    except the pending ``dirty`` range), the source range changed since the last run, and what the
    last run did. Written only by ``apps.metrics.rollups.jobs`` under the ``metrics.rollup`` lock."""

    tier = models.CharField(max_length=8, unique=True)
    watermark = models.DateTimeField(null=True, blank=True)
    # Source buckets rewritten (late data, new buckets) since this tier last merged them: [from, to).
    dirty_from = models.DateTimeField(null=True, blank=True)
    dirty_to = models.DateTimeField(null=True, blank=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_duration_ms = models.PositiveIntegerField(default=0)
    rows_written = models.BigIntegerField(default=0, help_text="Rows inserted or changed by the last run.")
    last_summary = models.CharField(max_length=300, blank=True, default="")

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"rollup {self.tier} @ {self.watermark}"

    def lag(self, now: dt.datetime) -> dt.timedelta | None:
        """How far behind ``now`` the tier's complete data is (None before the first run)."""
        return None if self.watermark is None else now - self.effective_watermark()

    def effective_watermark(self) -> dt.datetime:
        """The watermark, pulled back to the start of a pending dirty range."""
        assert self.watermark is not None
        if self.dirty_from is not None and self.dirty_from < self.watermark:
            return self.dirty_from
        return self.watermark
