"""``GET /api/v1/oncall-assignments``: who was on call and who was paged, step by step, newest first, for
the questions asked after an incident (``?alert=<alert id>``, ``?user=<username>``, ``?since=<RFC 3339>``).
Read-only: the engine writes these rows."""

from __future__ import annotations

import uuid
from typing import Any

from rest_framework import mixins, serializers, viewsets
from rest_framework.exceptions import ValidationError

from apps.core.api.pagination import CursorPagination
from apps.core.api.viewsets import READ_REQUIRED_SCOPES, OrgScopedMixin
from apps.core.roles import Role
from apps.escalation.api.serializers import InstantField, parse_instant
from apps.escalation.models import OnCallAssignment


class AssignmentSerializer(serializers.ModelSerializer):
    alert = serializers.UUIDField(source="alert_public_id", read_only=True)
    user = serializers.CharField(source="username", read_only=True)
    schedule = serializers.SerializerMethodField()
    group = serializers.SerializerMethodField(help_text="set when a group escalation paged (for the whole group)")
    at = InstantField(read_only=True)

    class Meta:
        model = OnCallAssignment
        fields = ["alert", "escalation_id", "step_index", "repeat", "reason", "schedule", "on_call", "user",
                  "suppressed", "group", "at"]

    def get_schedule(self, assignment: OnCallAssignment) -> str | None:
        return str(assignment.schedule.public_id) if assignment.schedule else None

    def get_group(self, assignment: OnCallAssignment) -> str | None:
        return str(assignment.group.public_id) if assignment.group else None


class AssignmentPagination(CursorPagination):
    ordering = ("-at", "-id")


class AssignmentViewSet(OrgScopedMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """The organization's on-call assignments, filtered by alert, user or time."""

    queryset = OnCallAssignment.objects.select_related("schedule", "group")
    serializer_class = AssignmentSerializer
    pagination_class = AssignmentPagination
    required_roles = {"list": Role.VIEWER}
    required_scopes = READ_REQUIRED_SCOPES

    def get_queryset(self) -> Any:
        queryset = super().get_queryset()
        params = self.request.query_params
        if params.get("alert"):
            try:
                queryset = queryset.filter(alert_public_id=uuid.UUID(params["alert"]))
            except ValueError as exc:
                raise ValidationError({"alert": "Expected an alert id (UUID)."}) from exc
        if params.get("user"):
            queryset = queryset.filter(username=params["user"])
        if params.get("since"):
            try:
                queryset = queryset.filter(at__gte=parse_instant(params["since"]))
            except ValueError as exc:
                raise ValidationError({"since": str(exc)}) from exc
        return queryset
