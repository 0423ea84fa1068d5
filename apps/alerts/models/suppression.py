"""Silences and maintenance windows: they suppress notifications, never evaluation or resolution."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.core.models import OrgOwnedModel


class Silence(OrgOwnedModel):
    """Alertmanager-style silence: alerts whose labels match every matcher between ``starts_at`` and
    ``ends_at`` are not notified. ``matchers`` is ``[{"name", "op" (= != =~ !~), "value"}]``."""

    matchers = models.JSONField(default=list)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_by_repr = models.CharField(max_length=200, blank=True)
    comment = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(ends_at__gt=models.F("starts_at")),
                                   name="%(app_label)s_%(class)s_ends_after_start"),
        ]
        indexes = [
            # Suppression check at notification time: an organization's silences not yet over.
            models.Index(fields=["organization", "ends_at"], name="alerts_silence_org_end_idx"),
        ]

    def __str__(self) -> str:
        return f"silence {self.public_id} until {self.ends_at:%Y-%m-%d %H:%M}"


class MaintenanceWindow(OrgOwnedModel):
    """Planned work: one-off (``starts_at`` for ``duration_seconds``) or recurring (an RFC 5545 RRULE
    expanded from ``starts_at`` in ``time_zone``, so "Sundays 02:00" stays 02:00 local across DST).
    Scoped to hosts, host tags and services; with no scope it covers the whole organization."""

    name = models.CharField(max_length=200)
    starts_at = models.DateTimeField(help_text="first occurrence")
    duration_seconds = models.PositiveIntegerField()
    rrule = models.CharField(max_length=500, blank=True, help_text="e.g. FREQ=WEEKLY;BYDAY=SU (empty: one-off)")
    time_zone = models.CharField(max_length=64, default="UTC")
    until = models.DateTimeField(null=True, blank=True, help_text="no occurrence starts after this")
    hosts = models.ManyToManyField("hosts.Host", blank=True, related_name="maintenance_windows")
    host_tags = models.JSONField(default=dict, blank=True)
    services = models.ManyToManyField("hosts.Service", blank=True, related_name="maintenance_windows")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_by_repr = models.CharField(max_length=200, blank=True)
    comment = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(duration_seconds__gte=1),
                                   name="%(app_label)s_%(class)s_duration_positive"),
        ]

    def __str__(self) -> str:
        return self.name
