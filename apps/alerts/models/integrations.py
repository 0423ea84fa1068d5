"""Integrations: doors through which other monitoring systems (Prometheus Alertmanager, any JSON sender)
open and resolve alerts in FiberStack."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.alerts.choices import IntegrationKind
from apps.core.models import OrgOwnedModel


class Integration(OrgOwnedModel):
    """A source of alerts with its own secret token. Its alerts belong to ``rule``, a system rule of kind
    ``external`` created with it: that rule carries the channels, ``group_by``, repeat interval (and, for
    escalation, the policy), so inbound alerts are grouped, suppressed, notified and resolved by the same
    lifecycle as our own. Only a lookup prefix and an HMAC of the token are stored, as for AgentToken."""

    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=16, choices=IntegrationKind.choices)
    rule = models.OneToOneField("alerts.AlertRule", on_delete=models.CASCADE, related_name="integration",
                                editable=False)
    enabled = models.BooleanField(default=True, help_text="a disabled integration refuses alerts (403)")
    token_prefix = models.CharField(max_length=16, unique=True, editable=False)
    token_hash = models.CharField(max_length=64, editable=False)
    token_rotated_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_received_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="%(app_label)s_%(class)s_unique_org_name"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"
