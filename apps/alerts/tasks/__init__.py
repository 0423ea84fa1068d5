"""Celery tasks of alerting (thin: load, guard, call a service), one module per concern."""

from apps.alerts.tasks import delivery, evaluation, lifecycle, search  # noqa: F401
