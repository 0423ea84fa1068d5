"""Thin Celery tasks of the alert lifecycle (the logic is in apps.alerts.services.lifecycle)."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from apps.alerts.services import lifecycle


@shared_task(name="alerts.send_reminders", max_retries=0)
def send_reminders() -> str:
    """Beat, every 30 s: reminders for alerts firing unacknowledged past their rule's repeat interval; the
    next run retries anything this one missed, hence no retries."""
    summary = lifecycle.send_reminders(now=timezone.now())
    return (f"{summary.notifications} notifications, {summary.reminded_groups} groups reminded, "
            f"{summary.rechecked_groups} suppressed groups re-checked")
