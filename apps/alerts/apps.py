from __future__ import annotations

from django.apps import AppConfig


class AlertsConfig(AppConfig):
    """Alert rules, alerts and their lifecycle, suppression, notification channels and the delivery ledger."""

    name = "apps.alerts"
    label = "alerts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.core import checks

        from apps.alerts.hooks import check_consumers

        checks.register(check_consumers)
        # The alerts family joins the logs app's Elasticsearch registry (retention, templates) at start-up.
        from apps.alerts import search  # noqa: F401
