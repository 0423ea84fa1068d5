from __future__ import annotations

from django.apps import AppConfig


class DashboardsConfig(AppConfig):
    """The organization overview for on-call staff and the chart widgets other pages embed."""

    name = "apps.dashboards"
    label = "dashboards"
