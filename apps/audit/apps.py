from __future__ import annotations

from django.apps import AppConfig


class AuditConfig(AppConfig):
    """Append-only record of every change, login and token use."""

    name = "apps.audit"
    label = "audit"

    def ready(self) -> None:
        from apps.audit import signals  # noqa: F401  (login/logout receivers)
