from __future__ import annotations

from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Abstract bases and plumbing shared by every app; owns no tables."""

    name = "apps.core"
    label = "core"
