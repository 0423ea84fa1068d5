"""Thin Celery task for logs storage upkeep (schedule in settings.CELERY_BEAT_SCHEDULE)."""

from __future__ import annotations

import datetime as dt

from celery import shared_task
from elasticsearch import ApiError, TransportError
from elasticsearch import ConnectionError as ElasticsearchConnectionError

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


_ES_ERRORS = (ElasticsearchConnectionError, TransportError, ApiError)


@shared_task(name="logs.index_rows", autoretry_for=_ES_ERRORS, retry_backoff=5, retry_backoff_max=600,
             max_retries=8)
def index_rows(family: str, organization_id: int, ids: list[int], start: str, end: str) -> str:
    """Copy committed entries or events (``family`` "logs" / "events") to Elasticsearch (apps/logs/es.py);
    retried with backoff while it is unreachable, then given up (PostgreSQL keeps the rows)."""
    from apps.logs import es

    if not es.enabled():
        return "skipped: ELASTICSEARCH_URL is not set"
    sent = es.index_rows(es.FAMILIES[family], organization_id=organization_id, ids=ids,
                         start=dt.datetime.fromisoformat(start), end=dt.datetime.fromisoformat(end))
    return f"indexed {sent} {family}"


@shared_task(name="logs.expire_es_indices", max_retries=0)
def expire_es_indices() -> str:
    """The ILM-equivalent of the Elasticsearch copies (apps/logs/es_retention.py); the next run retries."""
    from apps.logs import es, es_retention

    if not es.enabled():
        return "skipped: ELASTICSEARCH_URL is not set"
    report = es_retention.expire_indices()
    return "; ".join(f"{name}: keep {r['keep_days']} d, deleted {len(r['deleted_indices'])} indices, "
                     f"trimmed {len(r['trimmed_retentions'])} shorter retentions" for name, r in report.items())
