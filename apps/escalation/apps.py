from __future__ import annotations

from django.apps import AppConfig


class EscalationConfig(AppConfig):
    """On-call schedules (layers, rotations, restrictions, overrides) and who is on call; escalation
    policies and the engine join it later. Sits above alerts: no lower app imports it."""

    name = "apps.escalation"
    label = "escalation"
    default_auto_field = "django.db.models.BigAutoField"
