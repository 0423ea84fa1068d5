"""Per-user iCalendar feeds: a secret, revocable URL that calendar apps poll without a session."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.core.models import OrgOwnedModel


class CalendarFeed(OrgOwnedModel):
    """One user's feed of their final shifts across the organization's schedules. The URL carries
    ``public_id`` signed with the server secret (`apps.escalation.feeds`), so a guessed or altered URL is
    refused without a lookup; revoking sets ``revoked_at`` and the URL stops working at once."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="calendar_feeds")
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_fetched_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "user"], condition=models.Q(revoked_at__isnull=True),
                                    name="%(app_label)s_%(class)s_one_active_per_user"),
        ]

    def __str__(self) -> str:
        state = "revoked" if self.revoked_at else "active"
        return f"calendar feed of {self.user} in {self.organization} ({state})"
