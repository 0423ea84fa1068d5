"""Writes people make to the delivery ledger (the admin's "retry now"), audited."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.alerts.choices import NotificationStatus
from apps.alerts.delivery import enqueue
from apps.alerts.models import Notification
from apps.audit.services import record_event

#: A person may re-queue what gave up or is waiting; never what was delivered, suppressed or is being sent.
RETRYABLE_STATUSES = (NotificationStatus.FAILED, NotificationStatus.PENDING)


@transaction.atomic
def retry_notifications(*, notifications: Iterable[Notification], actor: Any) -> list[int]:
    """Re-queue failed or waiting notifications for an attempt now with a fresh attempt budget (the ledger
    keeps numbering its tries); returns the ids re-queued. Audited per row; deliver tasks after commit."""
    now = timezone.now()
    ids = [n.pk for n in notifications]
    requeued: list[int] = []
    rows = (Notification.objects.select_for_update(of=("self",)).select_related("channel")
            .filter(pk__in=ids, status__in=RETRYABLE_STATUSES).order_by("pk"))
    for row in rows:
        changes = {"status": [row.status, NotificationStatus.PENDING], "attempts": [row.attempts, 0],
                   "next_attempt_at": [row.next_attempt_at, now]}
        row.status, row.attempts, row.next_attempt_at, row.claimed_until = NotificationStatus.PENDING, 0, now, None
        row.save(update_fields=["status", "attempts", "next_attempt_at", "claimed_until", "updated_at"])
        record_event(action="notification.retried", actor=actor, organization=row.organization_id, target=row,
                     changes=changes)
        requeued.append(row.pk)
    enqueue(requeued)
    return requeued
