"""Audit maintenance tasks."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from apps.audit.retention import purge_events_older_than
from apps.core.locks import advisory_lock


@shared_task(name="audit.apply_retention", max_retries=0)
def apply_retention() -> str:
    """Drop audit rows past FIBERSTACK_AUDIT_RETENTION_DAYS (daily, singleton)."""
    with advisory_lock("audit.apply_retention") as acquired:
        if not acquired:
            return "skipped: another worker holds the lock"
        deleted = purge_events_older_than(settings.FIBERSTACK_AUDIT_RETENTION_DAYS)
    return f"deleted {deleted} audit events"
