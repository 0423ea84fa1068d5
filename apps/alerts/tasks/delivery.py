"""Thin Celery tasks of notification delivery: one attempt per task, and a sweep that loses nothing.

Retries are re-scheduled onto the queue the task came from (a worker consuming a private queue keeps its
own retries); the claim in apps.alerts.delivery.dispatch makes duplicate tasks for one row harmless."""

from __future__ import annotations

import os
import socket
from typing import Any

from celery import Task, shared_task
from django.conf import settings

from apps.alerts.delivery import DELIVER_TASK, dispatch

SWEEP_TASK = "alerts.sweep_notifications"


def _worker_name(task: Task) -> str:
    return f"{getattr(task.request, 'hostname', None) or socket.gethostname()}:{os.getpid()}"


def _same_queue(task: Task) -> dict[str, Any]:
    info = getattr(task.request, "delivery_info", None) or {}
    queue = info.get("routing_key")
    return {"queue": queue} if queue else {}


@shared_task(name=DELIVER_TASK, bind=True, max_retries=0, acks_late=True)
def deliver_notification(self: Task, notification_id: int) -> str:
    """Try to deliver one notification (if due and unclaimed); schedule the next try if it must wait."""
    step = dispatch.deliver(notification_id, worker=_worker_name(self))
    if step.retry_in is not None:
        self.apply_async(args=[notification_id], countdown=step.retry_in, **_same_queue(self))
    return f"notification {notification_id}: {step.summary}"


@shared_task(name=SWEEP_TASK, bind=True, max_retries=0)
def sweep_notifications(self: Task, limit: int | None = None) -> str:
    """Every 10 s: hand due pending rows and rows whose worker's claim expired to deliver tasks, so a lost
    task message or a crashed worker delays a notification, never drops it."""
    ids = dispatch.due_ids(limit=limit or settings.FIBERSTACK_NOTIFY_SWEEP_LIMIT)
    for notification_id in ids:
        deliver_notification.apply_async(args=[notification_id], **_same_queue(self))
    return f"{len(ids)} notifications handed to deliver tasks"
