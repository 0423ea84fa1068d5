from __future__ import annotations

from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Abstract bases and plumbing shared by every app; owns no tables."""

    name = "apps.core"
    label = "core"

    def ready(self) -> None:
        from django.db import models
        from rest_framework import serializers

        from apps.core.api.fields import JSONField

        # One mapping for every ModelSerializer, present and future: a null sent as form text is refused.
        serializers.ModelSerializer.serializer_field_mapping[models.JSONField] = JSONField
