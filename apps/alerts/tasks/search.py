"""Thin Celery task copying an alert to Elasticsearch (apps/alerts/search.py)."""

from __future__ import annotations

from celery import shared_task
from elasticsearch import ApiError, TransportError


@shared_task(name="alerts.index_alert", autoretry_for=(TransportError, ApiError), retry_backoff=5,
             retry_backoff_max=600, max_retries=8)
def index_alert_task(alert_id: int) -> str:
    """Retried with backoff while Elasticsearch is unreachable; the alert is re-read, so a late retry
    sends its newest state."""
    from apps.alerts import search
    from apps.logs import es

    if not es.enabled():
        return "skipped: ELASTICSEARCH_URL is not set"
    return f"indexed {search.index_alert(alert_id)} alert"
