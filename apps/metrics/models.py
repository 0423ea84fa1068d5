"""The series catalogue. Raw samples are not a Django model: they live in a hypertable or a natively
partitioned table created by migration 0002 through ``apps.metrics.storage`` (see that package for why),
and are written with binary COPY and read with SQL built in ``apps.metrics.read``."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.contrib.postgres.indexes import GinIndex
from django.db import models

from apps.core.models import OrgOwnedModel, OrgQuerySet, TimeStampedModel


def series_key_hash(name: str, labels: tuple[tuple[str, str], ...]) -> bytes:
    """sha256 of the canonical text of a series (name + labels sorted by name).

    The hash, not the text, is the unique key: label values may be 1 KiB each, which would overflow a
    B-tree entry (2.7 KB) as text; 32 bytes also keep the unique index and the Redis cache small."""
    canonical = json.dumps([name, labels], separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).digest()


class SeriesQuerySet(OrgQuerySet):
    def named(self, name: str) -> SeriesQuerySet:
        return self.filter(name=name)


class Series(OrgOwnedModel):
    """One time series: (organization, metric name, label set). Samples reference its int4 ``id``.

    The host is both a label (as the agent sent it) and a nullable FK resolved from the first host label
    (``FIBERSTACK_HOST_LABELS``), so host pages join cheaply and label matchers still see the original."""

    # int4 on purpose: every raw sample carries this id, and 4 bytes x billions of rows matters.
    id = models.AutoField(primary_key=True)
    organization = models.ForeignKey(
        "organizations.Organization", on_delete=models.CASCADE, related_name="series"
    )
    name = models.CharField(max_length=256)
    labels = models.JSONField(default=dict, blank=True)
    key_hash = models.BinaryField(max_length=32, editable=False)
    host = models.ForeignKey(
        "hosts.Host", null=True, blank=True, on_delete=models.SET_NULL, related_name="series"
    )
    # Metric metadata (Prometheus metadata requests, JSON "unit"); empty when unknown.
    type = models.CharField(max_length=16, blank=True, default="")
    help = models.TextField(blank=True, default="")
    unit = models.CharField(max_length=64, blank=True, default="")

    objects: Any = SeriesQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "series"
        constraints = [
            # The series resolver's INSERT ... ON CONFLICT targets this constraint.
            models.UniqueConstraint(fields=["organization", "key_hash"], name="%(app_label)s_%(class)s_unique_org_key"),
        ]
        indexes = [
            # GET /api/v1/series and /api/v1/metrics?name=...: every query filters by org + name first.
            models.Index(fields=["organization", "name"], name="metrics_series_org_name"),
            # Label matchers (labels @> '{"job": "node"}') in apps.metrics.read.select.
            GinIndex(fields=["labels"], opclasses=["jsonb_path_ops"], name="metrics_series_labels_gin"),
        ]

    def __str__(self) -> str:
        inner = ",".join(f'{k}="{v}"' for k, v in sorted(self.labels.items()))
        return f"{self.name}{{{inner}}}"


class MetricFamily(TimeStampedModel):
    """Type/help/unit of a metric name in one organization, as Prometheus sends it in metadata-only
    remote_write requests. Kept apart from Series because metadata usually arrives before (or without)
    the series it describes; new series copy it when they are created."""

    organization = models.ForeignKey(
        "organizations.Organization", on_delete=models.CASCADE, related_name="metric_families"
    )
    name = models.CharField(max_length=256)
    type = models.CharField(max_length=16, blank=True, default="")
    help = models.TextField(blank=True, default="")
    unit = models.CharField(max_length=64, blank=True, default="")

    objects: Any = OrgQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "metric families"
        constraints = [
            # Upserted by services.store_metadata (ON CONFLICT); the series resolver joins on it.
            models.UniqueConstraint(fields=["organization", "name"], name="%(app_label)s_%(class)s_unique_org_name"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.type or 'untyped'})"


from apps.metrics.rollups.models import RollupState  # noqa: E402, F401  (registers the model in this app)
