"""The saved dashboard as the API shows and accepts it: the widget list is one JSON document validated by
the same WidgetForm as the edit page; a bad widget is a 400 naming the widget's index and field."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from apps.core.api.fields import CurrentOrganizationDefault
from apps.dashboards.saved.models import SavedDashboard
from apps.dashboards.saved.widgets import WidgetListError, clean_widgets


class SavedDashboardSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    organization = serializers.HiddenField(default=CurrentOrganizationDefault())
    widgets = serializers.JSONField(required=False,
                                    help_text="[{metric, labels, agg, range, title, width}, ...] in display order")

    class Meta:
        model = SavedDashboard
        fields = ["id", "organization", "name", "description", "widgets", "created_at", "updated_at"]
        read_only_fields = ["created_at", "updated_at"]
        # The unique name is checked by the service (model validation), which reports it on ``name``.
        validators: list = []

    def validate_widgets(self, value: Any) -> list[dict[str, Any]]:
        try:
            return clean_widgets(value)
        except WidgetListError as exc:
            raise serializers.ValidationError(exc.detail) from None
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from None
