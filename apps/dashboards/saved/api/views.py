"""`/api/v1/dashboards`: saved dashboards as code. Writes go through apps.dashboards.saved.services, so
they are validated and audited like page edits; viewers and read tokens read, editors and config tokens
write, admins delete."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.core.exceptions import ValidationError
from rest_framework import serializers

from apps.core.api.actors import request_actor
from apps.core.api.viewsets import CONFIG_REQUIRED_SCOPES, OrgScopedViewSet
from apps.dashboards.saved import services
from apps.dashboards.saved.api.serializers import SavedDashboardSerializer
from apps.dashboards.saved.models import SavedDashboard


def _fields(serializer: SavedDashboardSerializer) -> dict[str, Any]:
    return {k: v for k, v in serializer.validated_data.items() if k != "organization"}


class SavedDashboardViewSet(OrgScopedViewSet):
    """Saved dashboards of the caller's organization (``widgets`` in display order)."""

    queryset = SavedDashboard.objects.all()
    serializer_class = SavedDashboardSerializer
    required_scopes = CONFIG_REQUIRED_SCOPES

    def perform_create(self, serializer: SavedDashboardSerializer) -> None:
        with _as_400():
            serializer.instance = services.create_dashboard(organization=self.request.organization,
                                                            actor=request_actor(self.request), **_fields(serializer))

    def perform_update(self, serializer: SavedDashboardSerializer) -> None:
        with _as_400():
            serializer.instance = services.update_dashboard(dashboard=serializer.instance,
                                                            actor=request_actor(self.request), **_fields(serializer))

    def perform_destroy(self, instance: SavedDashboard) -> None:
        services.delete_dashboard(dashboard=instance, actor=request_actor(self.request))


@contextmanager
def _as_400() -> Iterator[None]:
    """A service's ValidationError (e.g. the name taken meanwhile) -> DRF's 400 naming the field."""
    try:
        yield
    except ValidationError as exc:
        raise serializers.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else exc.messages) from None
