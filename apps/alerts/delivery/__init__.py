"""Delivery of outbox notifications to their channels (webhook, email, Slack) with retries and a ledger."""

from __future__ import annotations

import functools
from collections.abc import Iterable

from celery import current_app
from django.db import transaction

DELIVER_TASK = "alerts.deliver_notification"


def enqueue(notification_ids: Iterable[int]) -> None:
    """Deliver these notifications once the current transaction commits (the outbox rows exist by then)."""
    ids = list(notification_ids)
    if ids:
        transaction.on_commit(functools.partial(_send, ids), robust=True)


def _send(ids: list[int]) -> None:
    for notification_id in ids:
        current_app.send_task(DELIVER_TASK, args=[notification_id])
