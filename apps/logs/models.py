"""The one ORM model of the app: per-organization retention overrides. Log entries and events live in
time-partitioned tables written by COPY and read with SQL (apps/logs/storage.py, apps/logs/search.py),
which the ORM cannot express (no primary key usable by Django on a partitioned table without the
partition column, no generated tsvector)."""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from apps.core.models import TimeStampedModel

MAX_RETENTION_DAYS = 3650


class LogRetention(TimeStampedModel):
    """How long one organization keeps log entries and events; null means the product default
    (``FIBERSTACK_LOGS_RETENTION_DAYS`` 30, ``FIBERSTACK_EVENTS_RETENTION_DAYS`` 90)."""

    organization = models.OneToOneField("organizations.Organization", on_delete=models.CASCADE,
                                        related_name="log_retention")
    logs_days = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(MAX_RETENTION_DAYS)])
    events_days = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(MAX_RETENTION_DAYS)])

    def __str__(self) -> str:
        return f"log retention of {self.organization_id}: {self.logs_days or '-'} / {self.events_days or '-'} days"


class LogEntry(models.Model):
    """Read-only ORM view of the ``logs_entry`` partitioned table (created in SQL by apps/logs/storage.py),
    for the Elasticsearch documents only: ingest writes with COPY and search reads with SQL."""

    id = models.BigIntegerField(primary_key=True)
    time = models.DateTimeField()
    organization_id = models.IntegerField()
    host_id = models.IntegerField(null=True)
    host = models.TextField()
    service = models.TextField()
    level = models.TextField()
    program = models.TextField()
    message = models.TextField()
    request_id = models.TextField()
    trace_id = models.TextField()
    exception_type = models.TextField()
    exception_message = models.TextField()
    exception_stack = models.TextField()
    context = models.JSONField()

    class Meta:
        managed = False
        db_table = "logs_entry"

    def __str__(self) -> str:
        return f"{self.time:%Y-%m-%dT%H:%M:%S} {self.host} {self.message[:60]}"


class LogEvent(models.Model):
    """Read-only ORM view of the ``logs_event`` partitioned table, for the Elasticsearch documents only
    (like LogEntry: ingest writes with COPY, search reads with SQL)."""

    id = models.BigIntegerField(primary_key=True)
    time = models.DateTimeField()
    organization_id = models.IntegerField()
    host_id = models.IntegerField(null=True)
    host = models.TextField()
    kind = models.TextField()
    level = models.TextField()
    title = models.TextField()
    message = models.TextField()
    source = models.TextField()
    context = models.JSONField()

    class Meta:
        managed = False
        db_table = "logs_event"

    def __str__(self) -> str:
        return f"{self.time:%Y-%m-%dT%H:%M:%S} {self.kind} {self.title[:60]}"
