from __future__ import annotations

from django.apps import AppConfig


class LogsConfig(AppConfig):
    """Log entries and events: storage (time-partitioned), intake doors, search, live tail, retention."""

    name = "apps.logs"
    label = "logs"
