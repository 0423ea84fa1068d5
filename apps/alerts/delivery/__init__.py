"""Delivery of outbox notifications to their channels (webhook, email, Slack) with retries and a ledger."""

from __future__ import annotations

import functools
from collections.abc import Iterable

from celery import current_app
from django.conf import settings
from django.db import transaction

DELIVER_TASK = "alerts.deliver_notification"


def enqueue(notification_ids: Iterable[int]) -> None:
    """Deliver these notifications once the current transaction commits (the outbox rows exist by then)."""
    ids = list(notification_ids)
    if ids:
        transaction.on_commit(functools.partial(_send, ids), robust=True)


def _send(ids: list[int]) -> None:
    # FIBERSTACK_DELIVERY_QUEUE ("" = the default route) lets a deployment -- or a test worker on a
    # private queue -- take delivery onto a queue of its own.
    options = {"queue": settings.FIBERSTACK_DELIVERY_QUEUE} if settings.FIBERSTACK_DELIVERY_QUEUE else {}
    for notification_id in ids:
        current_app.send_task(DELIVER_TASK, args=[notification_id], **options)
