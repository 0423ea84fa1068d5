"""The notification outbox and its delivery ledger."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone

from apps.alerts.choices import NotificationKind, NotificationStatus
from apps.core.models import OrgOwnedModel


class Notification(OrgOwnedModel):
    """One message to one channel about one alert or group change. Created in the transaction of the
    change (the outbox), delivered by Celery after commit; ``payload`` is frozen at creation so every
    retry sends the same body with the same ``idempotency_key``."""

    channel = models.ForeignKey("alerts.NotificationChannel", on_delete=models.CASCADE, related_name="notifications")
    # SET_NULL: the ledger outlives a deleted rule (and its alerts), and a queued "resolved" for them is still
    # sent -- the payload is self-contained.
    alert = models.ForeignKey("alerts.Alert", null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="notifications")
    group = models.ForeignKey("alerts.AlertGroup", null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="notifications")
    kind = models.CharField(max_length=16, choices=NotificationKind.choices)
    status = models.CharField(max_length=16, choices=NotificationStatus.choices, default=NotificationStatus.PENDING)
    payload = models.JSONField(default=dict, help_text="the body as first built; retries resend it")
    idempotency_key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claimed_until = models.DateTimeField(null=True, blank=True, help_text="a worker's claim; expired = retry")
    last_error = models.TextField(blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    suppressed_reason = models.CharField(max_length=500, blank=True)

    class Meta:
        indexes = [
            # The delivery sweep: pending (or abandoned sending) notifications whose attempt is due.
            models.Index(fields=["next_attempt_at"], condition=Q(status__in=["pending", "sending"]),
                         name="alerts_notification_due_idx"),
            # Per-channel rate limit: deliveries to a channel in the last minute.
            models.Index(fields=["channel", "delivered_at"], name="alerts_notification_rate_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} -> {self.channel} ({self.status})"


class DeliveryAttempt(models.Model):
    """One try at delivering a notification: who (channel), when, result, error. The ledger rows."""

    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="attempt_rows")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField(default=timezone.now)
    duration_ms = models.PositiveIntegerField(default=0)
    ok = models.BooleanField(default=False)
    response_status = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    worker = models.CharField(max_length=200, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["notification", "number"], name="%(app_label)s_%(class)s_unique_number"),
        ]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.notification_id}: {'ok' if self.ok else self.error[:60]}"
