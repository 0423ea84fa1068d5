"""Thin Celery tasks for metrics storage upkeep (schedule in settings.CELERY_BEAT_SCHEDULE)."""

from __future__ import annotations

from celery import shared_task

from apps.core.locks import advisory_lock
from apps.metrics import storage


@shared_task(name="metrics.ensure_partitions", max_retries=0)
def ensure_partitions() -> str:
    """Keep daily partitions FIBERSTACK_PARTITIONS_AHEAD days ahead and empty the DEFAULT partition;
    a singleton (advisory lock), so two beat deliveries never race on DDL."""
    with advisory_lock("metrics.ensure_partitions") as acquired:
        if not acquired:
            return "skipped: another ensure_partitions is running"
        from django.db import transaction

        with transaction.atomic():
            done = storage.ensure_partitions()
    return f"{storage.backend_name()}: {done['created']} partitions created, {done['moved']} rows moved"


from apps.metrics import rollup_tasks  # noqa: E402, F401  (rollup/retention/compression tasks register here)
