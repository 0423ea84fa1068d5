"""Bookkeeping of the rollup jobs: one row per tier, quarantined series ranges and the invalidation
log (this module is imported by ``apps.metrics.models``, so Django registers all three in the metrics
app)."""

from __future__ import annotations

import datetime as dt

from django.db import models
from django.db.models.functions import Now


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


class RollupQuarantine(models.Model):
    """A series whose buckets in [bucket_from, bucket_to) of one tier could not be rolled up (the error
    is kept): the job skipped them and moved on, so one bad series never stops the tier for everyone.
    Resolved when a later step over that range succeeds; shown in the admin and in ``/readyz``."""

    tier = models.CharField(max_length=8)
    # No database constraint: raw samples may outlive a deleted series, and a quarantine row must never
    # be what fails the job's transaction.
    series = models.ForeignKey("metrics.Series", on_delete=models.DO_NOTHING, db_constraint=False, null=True,
                               related_name="+")
    bucket_from = models.DateTimeField()
    bucket_to = models.DateTimeField()
    error = models.TextField()
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    attempts = models.PositiveIntegerField(default=1)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-last_seen_at"]
        indexes = [
            # The job's per-step lookups and /readyz count only the open rows of a tier.
            models.Index(fields=["tier", "series", "bucket_from"], name="metrics_rollupq_open",
                         condition=models.Q(resolved_at__isnull=True)),
        ]

    def __str__(self) -> str:
        return f"{self.tier} series {self.series_id} [{self.bucket_from:%Y-%m-%d %H:%M}, {self.bucket_to:%H:%M})"


class RollupInvalidation(models.Model):
    """Raw time [lo, hi) that received samples the 1m job may already have passed (late data, replays,
    backfill): written by ingest in the sample's own transaction, consumed and deleted (or shrunk) by the
    1m job in the transaction of the step that re-rolled it -- TimescaleDB's invalidation-log idea."""

    id = models.BigAutoField(primary_key=True)
    lo = models.DateTimeField()
    hi = models.DateTimeField()
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        indexes = [
            # The 1m job takes the oldest ranges first (ORDER BY lo LIMIT n).
            models.Index(fields=["lo"], name="metrics_rollupinv_lo"),
        ]

    def __str__(self) -> str:
        return f"invalidated [{self.lo:%Y-%m-%d %H:%M}, {self.hi:%Y-%m-%d %H:%M})"
