from __future__ import annotations

from django.apps import AppConfig


class HostsConfig(AppConfig):
    """Inventory: hosts, the services on them and the dependency graph used for alert inhibition."""

    name = "apps.hosts"
    label = "hosts"
