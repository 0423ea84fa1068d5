"""Celery tasks for rollups, retention and compression (thin: lock, call, summarise). Imported by
``apps.metrics.tasks`` so worker autodiscovery registers them; schedule in CELERY_BEAT_SCHEDULE."""

from __future__ import annotations

import datetime as dt
import logging

from celery import shared_task

from apps.core.locks import advisory_lock

logger = logging.getLogger(__name__)


@shared_task(name="metrics.rollup", max_retries=0)
def rollup() -> str:
    """Advance every rollup tier (1m from raw, then 5m, 1h, 1d); a singleton, so overlapping beat
    deliveries skip instead of computing the same buckets twice."""
    from apps.metrics.rollups.jobs import run_rollups

    with advisory_lock("metrics.rollup") as acquired:
        if not acquired:
            return "skipped: another rollup is running"
        reports = run_rollups()
    return "; ".join(r.summary() for r in reports)


@shared_task(name="metrics.apply_retention", max_retries=0)
def apply_retention() -> str:
    """Drop expired partitions/chunks per tier, trim shorter-retention organizations' rollup rows, and
    create rollup partitions ahead; a singleton (DDL must not race)."""
    from apps.metrics import retention

    with advisory_lock("metrics.apply_retention") as acquired:
        if not acquired:
            return "skipped: another retention run is active"
        report = retention.apply_retention()
    parts = [
        f"{tier}: keep {info['keep_days']}d, dropped {len(info['dropped'])}, deleted {info['deleted_rows']} rows"
        for tier, info in report.items()
        if isinstance(info, dict)
    ]
    return "; ".join(parts) + f"; {report['partitions_created']} partitions created"


def run_compression(*, older_than: dt.timedelta | None = None, limit: int | None = None) -> str:
    """Compress what is due on either backend (the caller holds the retention lock): closed raw and rollup
    partitions and the open 1m partitions' closed hours into chunks on plain PostgreSQL, native raw and
    rollup chunks on TimescaleDB (``apps.metrics.compression``)."""
    from apps.metrics import compression

    report = compression.compress_raw(older_than=older_than, limit=limit)
    logger.info("%s", report.summary())
    return report.summary()


@shared_task(name="metrics.compress_chunks", max_retries=0)
def compress_chunks() -> str:
    """Compress closed raw partitions (plain PostgreSQL) or chunks (TimescaleDB); shares the retention
    lock: compressing a partition that retention is dropping would fail."""
    with advisory_lock("metrics.apply_retention") as acquired:
        if not acquired:
            return "skipped: retention or compression is running"
        return run_compression()
