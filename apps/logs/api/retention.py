"""``GET|PATCH /api/v1/logs/retention``: how long the caller's organization keeps log entries and events.
Members and read tokens read it; signed-in admins and owners change it, within the plan (a value above the
plan's ceiling is a 400 naming the field); every change is audited (``log_retention.updated``)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.api.actors import request_actor
from apps.core.api.viewsets import OrgScopedMixin
from apps.core.roles import Role
from apps.core.scopes import TokenScope
from apps.logs import retention
from apps.logs.models import LogRetention
from apps.logs.services import set_log_retention

FIELDS = {"logs_days": "logs", "events_days": "events"}


class RetentionSerializer(serializers.Serializer):
    """The overrides; null (or absent from a PUT) means the product default."""

    logs_days = serializers.IntegerField(min_value=1, allow_null=True, required=False)
    events_days = serializers.IntegerField(min_value=1, allow_null=True, required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        plan = self.context["organization"].plan
        errors = {}
        for name, kind in FIELDS.items():
            value = attrs.get(name)
            limit = retention.plan_max_days(plan, kind)
            if value is not None and value > limit:
                errors[name] = [f"The {plan} plan keeps {kind} for at most {limit} days."]
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


def describe(organization: Any) -> dict[str, Any]:
    """Overrides, what applies now, the defaults and the plan's ceilings."""
    current = LogRetention.objects.filter(organization=organization).first()
    overrides = {name: getattr(current, name, None) for name in FIELDS}
    return {
        **overrides,
        "effective_days": {kind: retention.effective_days(organization.plan, overrides[name], kind)
                           for name, kind in FIELDS.items()},
        "default_days": {kind: retention.default_days(kind) for kind in FIELDS.values()},
        "plan": organization.plan,
        "plan_max_days": {kind: retention.plan_max_days(organization.plan, kind) for kind in FIELDS.values()},
    }


class LogRetentionView(OrgScopedMixin, APIView):
    """Read (viewers, read tokens) and change (admins, sessions only: no token may change retention)."""

    required_roles = {"get": Role.VIEWER, "head": Role.VIEWER, "options": Role.VIEWER, "patch": Role.ADMIN,
                      "put": Role.ADMIN}
    required_scopes = {"get": TokenScope.READ, "head": TokenScope.READ, "options": TokenScope.READ}
    serializer_class = RetentionSerializer

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        return Response(describe(request.organization))  # type: ignore[attr-defined]

    @extend_schema(request=RetentionSerializer, responses=OpenApiTypes.OBJECT)
    def patch(self, request: Request) -> Response:
        return self._change(request, partial=True)

    @extend_schema(request=RetentionSerializer, responses=OpenApiTypes.OBJECT)
    def put(self, request: Request) -> Response:
        return self._change(request, partial=False)

    def _change(self, request: Request, *, partial: bool) -> Response:
        organization = request.organization  # type: ignore[attr-defined]
        serializer = RetentionSerializer(data=request.data, context={"organization": organization})
        serializer.is_valid(raise_exception=True)
        days = dict(serializer.validated_data)
        if not partial:  # PUT replaces: an omitted field goes back to the default
            days = {name: days.get(name) for name in FIELDS}
        set_log_retention(organization=organization, actor=request_actor(request), **days)
        return Response(describe(organization))
