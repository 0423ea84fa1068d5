"""Choices of escalation policies, contact methods and the engine's runs."""

from __future__ import annotations

from django.db import models


class StepAction(models.TextChoices):
    """What one escalation step does."""

    NOTIFY_SCHEDULE = "notify_schedule", "Notify the on-call of a schedule"
    NOTIFY_USER = "notify_user", "Notify users"
    NOTIFY_CHANNEL = "notify_channel", "Notify channels"


class ContactKind(models.TextChoices):
    """How a person is reached; each maps onto a notification channel kind of the same name."""

    EMAIL = "email", "Email"
    WEBHOOK = "webhook", "Webhook"
    SLACK = "slack", "Slack incoming webhook"


class RunStatus(models.TextChoices):
    """An alert's escalation: paging (active), stood down by an acknowledgement (which may time out),
    or over (resolved, steps exhausted, no policy)."""

    ACTIVE = "active", "Active"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    ENDED = "ended", "Ended"


#: Runs the sweep and the step task still care about.
LIVE_STATUSES = (RunStatus.ACTIVE, RunStatus.ACKNOWLEDGED)
