"""How a person is paged: their contact methods, each with a delay (the personal notification rule,
e.g. email at once, webhook after 5 minutes)."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.core.models import OrgOwnedModel
from apps.escalation.choices import ContactKind


class ContactMethod(OrgOwnedModel):
    """One way to reach ``user`` in this organization, used ``delay_seconds`` after they are paged.
    ``channel`` is an escalation-managed NotificationChannel mirroring it, so every page goes through the
    alerts outbox, its retries and its ledger like any other notification. Only ``verified`` methods are
    paged: an address someone typed is not trusted with incidents until its owner proves they read it."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="contact_methods")
    kind = models.CharField(max_length=16, choices=ContactKind.choices)
    address = models.EmailField(blank=True, help_text="email: the recipient")
    url = models.URLField(max_length=2000, blank=True, help_text="webhook and slack: where to POST")
    delay_seconds = models.PositiveIntegerField(default=0, help_text="after being paged; 0 = at once")
    verified = models.BooleanField(default=False, help_text="the address was confirmed (its link, or an admin); "
                                                            "unverified methods are never paged")
    verified_at = models.DateTimeField(null=True, blank=True, editable=False)
    verification_sent_at = models.DateTimeField(null=True, blank=True, editable=False,
                                                help_text="when the last verification message was queued")
    enabled = models.BooleanField(default=True)
    channel = models.OneToOneField("alerts.NotificationChannel", null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+", editable=False)

    class Meta:
        ordering = ["user", "delay_seconds", "pk"]

    def __str__(self) -> str:
        return f"{self.user} {self.kind} {self.address or self.url} (+{self.delay_seconds}s)"

    @property
    def destination(self) -> str:
        return self.address or self.url
