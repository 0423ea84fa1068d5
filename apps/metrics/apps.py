from __future__ import annotations

from django.apps import AppConfig


class MetricsConfig(AppConfig):
    """Series catalogue, raw samples, rollups, ingest doors and the query API."""

    name = "apps.metrics"
    label = "metrics"
