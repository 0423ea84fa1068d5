"""Where notifications go."""

from __future__ import annotations

import secrets

from django.db import models

from apps.alerts.choices import ChannelKind
from apps.core.models import OrgOwnedModel, OrgQuerySet


def new_signing_secret() -> str:
    return secrets.token_urlsafe(32)


class NotificationChannelQuerySet(OrgQuerySet):
    """Channels with the reads that the configuration doors share."""

    def user_configured(self) -> NotificationChannelQuerySet:
        """The channels config users see and attach to rules (not managed by another app)."""
        return self.filter(managed_by="")


class NotificationChannel(OrgOwnedModel):
    """A destination for notifications: a webhook (Alertmanager v4 body, HMAC-signed), an email address or
    a Slack incoming webhook. Rules list the channels they notify."""

    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=ChannelKind.choices)
    url = models.URLField(max_length=2000, blank=True, help_text="webhook and slack: where to POST")
    address = models.EmailField(blank=True, help_text="email: the recipient")
    # Receivers verify X-FiberStack-Signature (HMAC-SHA256 of the body) with this; shown to config users.
    signing_secret = models.CharField(max_length=128, default=new_signing_secret)
    headers = models.JSONField(default=dict, blank=True, help_text="webhook: extra request headers")
    enabled = models.BooleanField(default=True)
    rate_limit_per_minute = models.PositiveIntegerField(
        default=60, help_text="deliveries per minute; more wait for the next minute (0 = unlimited)")
    # A higher app may own a channel (e.g. a person's private contact address). Such channels are hidden from
    # the channels API and pages, cannot be attached to rules and are read-only in the admin. Alerts only
    # reads the marker; it never knows who set it.
    managed_by = models.CharField(max_length=64, blank=True, default="", editable=False,
                                  help_text="which app manages this channel; empty = user-configured")

    objects = NotificationChannelQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="%(app_label)s_%(class)s_unique_org_name"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"

    @property
    def is_managed(self) -> bool:
        return bool(self.managed_by)
