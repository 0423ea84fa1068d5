"""Thin Celery task for logs storage upkeep (schedule in settings.CELERY_BEAT_SCHEDULE)."""

from __future__ import annotations

from celery import shared_task

from apps.core.locks import advisory_lock


@shared_task(name="logs.maintain_storage", max_retries=0)
def maintain_storage() -> str:
    """Partitions ahead, expired partitions dropped, shorter retentions trimmed; a singleton (advisory
    lock), so two beat deliveries never race on DDL."""
    with advisory_lock("logs.maintain_storage") as acquired:
        if not acquired:
            return "skipped: another logs.maintain_storage is running"
        from apps.logs.retention import apply_retention

        report = apply_retention()
    return (f"logs: dropped {len(report['logs']['dropped'])}, deleted {report['logs']['deleted_rows']}; "
            f"events: dropped {len(report['events']['dropped'])}, deleted {report['events']['deleted_rows']}; "
            f"{report['partitions_created']} partitions created")
