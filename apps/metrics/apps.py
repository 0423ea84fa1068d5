from __future__ import annotations

from django.apps import AppConfig


class MetricsConfig(AppConfig):
    """Series catalogue, raw samples, rollups, ingest doors and the query API."""

    name = "apps.metrics"
    label = "metrics"

    def ready(self) -> None:
        from django.core import checks

        from apps.metrics import signals  # noqa: F401  (connects the catalogue's cache invalidation)
        from apps.metrics.hooks import check_consumers

        checks.register(check_consumers)
