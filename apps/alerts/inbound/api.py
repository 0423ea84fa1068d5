"""``/api/v1/integrations``: integrations as code (config tokens write, read tokens read; editors write,
admins delete), ``POST /api/v1/integrations/{id}/rotate-token``, and the two doors' routes.

The token is in the reply of create and rotate-token only (``token`` and ``url_with_token``); afterwards
only its ``token_prefix`` is shown. ``url`` is the door the integration's kind reads. ``channels``,
``group_by`` and ``repeat_interval`` live on the integration's rule (``rule``), where the lifecycle reads
them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.urls import re_path, reverse
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_view
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter

from apps.alerts.api.config import ChannelReferenceField
from apps.alerts.choices import IntegrationKind
from apps.alerts.inbound import doors, services
from apps.alerts.models import Integration, NotificationChannel
from apps.alerts.services.config import MAX_REPEAT_INTERVAL_SECONDS
from apps.core.api.actors import request_actor
from apps.core.api.viewsets import CONFIG_REQUIRED_SCOPES, DEFAULT_REQUIRED_ROLES, OrgScopedViewSet
from apps.core.roles import Role
from apps.core.scopes import TokenScope

T = TypeVar("T")
API_NAMES = {"repeat_interval_seconds": "repeat_interval"}


def door_path(integration: Integration, token: str | None = None) -> str:
    kwargs = {"public_id": integration.public_id, **({"token": token} if token else {})}
    return reverse(f"integration-{integration.kind}" + ("-token" if token else ""), kwargs=kwargs)


def door_url(integration: Integration, token: str | None = None) -> str:
    return settings.FIBERSTACK_BASE_URL.rstrip("/") + door_path(integration, token)


@extend_schema_field({"type": "string", "enum": list(IntegrationKind.values)}, component_name="IntegrationKind")
class IntegrationKindField(serializers.ChoiceField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=IntegrationKind.choices, **kwargs)


class IntegrationSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    kind = IntegrationKindField()
    channels = ChannelReferenceField(queryset=NotificationChannel.objects.all(), many=True, required=False,
                                     source="rule.channels")
    group_by = serializers.ListField(child=serializers.CharField(max_length=200), required=False,
                                     source="rule.group_by", help_text="label names; default [\"alertname\"]")
    repeat_interval = serializers.IntegerField(source="rule.repeat_interval_seconds", required=False, min_value=0,
                                               max_value=MAX_REPEAT_INTERVAL_SECONDS,
                                               help_text="seconds between reminders; 0 = never")
    rule = serializers.UUIDField(source="rule.public_id", read_only=True,
                                 help_text="the external rule holding this integration's alerts")
    url = serializers.SerializerMethodField(help_text="where the sender POSTs (with the token as Bearer)")

    class Meta:
        model = Integration
        fields = ["id", "name", "kind", "enabled", "channels", "group_by", "repeat_interval", "rule", "url",
                  "token_prefix", "token_rotated_at", "last_received_at", "created_at", "updated_at"]
        read_only_fields = ["token_prefix", "token_rotated_at", "last_received_at", "created_at", "updated_at"]
        validators: list = []  # the service checks name uniqueness within the organization

    def get_url(self, integration: Integration) -> str:
        return door_url(integration)


class IntegrationWithTokenSerializer(IntegrationSerializer):
    """The reply of create and rotate-token: the only time the token is shown."""

    token = serializers.SerializerMethodField()
    url_with_token = serializers.SerializerMethodField(help_text="for senders that cannot set headers")

    class Meta(IntegrationSerializer.Meta):
        fields = [*IntegrationSerializer.Meta.fields, "token", "url_with_token"]

    def get_token(self, integration: Integration) -> str:
        return self.context["token"]

    def get_url_with_token(self, integration: Integration) -> str:
        return door_url(integration, self.context["token"])



def _call(write: Callable[[], T]) -> T:
    try:
        return write()
    except DjangoValidationError as exc:
        if not hasattr(exc, "error_dict"):
            raise serializers.ValidationError({"detail": exc.messages}) from exc
        raise serializers.ValidationError(
            {API_NAMES.get(field, field): messages for field, messages in exc.message_dict.items()}) from exc


def _fields(data: dict[str, Any]) -> dict[str, Any]:
    """Serializer data (the rule's settings nested under ``rule``) -> the services' keyword arguments."""
    fields = {key: value for key, value in data.items() if key != "rule"}
    fields.update(data.get("rule", {}))
    return fields


@extend_schema_view(
    list=extend_schema(summary="List integrations"),
    create=extend_schema(summary="Create an integration", responses={201: IntegrationWithTokenSerializer}),
)
class IntegrationViewSet(OrgScopedViewSet):
    """Integrations: Alertmanager or generic JSON senders with their own token. Deleting one deletes its
    rule and alerts."""

    queryset = Integration.objects.select_related("rule").prefetch_related("rule__channels")
    serializer_class = IntegrationSerializer
    required_roles = {**DEFAULT_REQUIRED_ROLES, "rotate_token": Role.EDITOR}
    required_scopes = {**CONFIG_REQUIRED_SCOPES, "rotate_token": TokenScope.CONFIG}

    def _with_token(self, integration: Integration, token: str) -> dict[str, Any]:
        context = {**self.get_serializer_context(), "token": token}
        return IntegrationWithTokenSerializer(integration, context=context).data

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        integration, token = _call(lambda: services.create_integration(
            organization=request.organization, actor=request_actor(request), **_fields(serializer.validated_data)))
        return Response(self._with_token(integration, token), status=status.HTTP_201_CREATED)

    def perform_update(self, serializer: IntegrationSerializer) -> None:
        fields = _fields(serializer.validated_data)
        serializer.instance = _call(lambda: services.update_integration(
            integration=serializer.instance, actor=request_actor(self.request), **fields))

    def perform_destroy(self, instance: Integration) -> None:
        services.delete_integration(integration=instance, actor=request_actor(self.request))

    @extend_schema(request=None, responses=IntegrationWithTokenSerializer,
                   summary="Give the integration a new token (the old one stops working)")
    @action(detail=True, methods=["post"], url_path="rotate-token")
    def rotate_token(self, request: Request, public_id: str | None = None) -> Response:
        integration, token = services.rotate_integration_token(integration=self.get_object(),
                                                               actor=request_actor(request))
        return Response(self._with_token(integration, token))


router = SimpleRouter()
router.trailing_slash = "/?"
router.register("integrations", IntegrationViewSet, basename="integration")

_ID = r"(?P<public_id>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"
_TOKEN = r"(?P<token>[A-Za-z0-9_\-]+)"
urlpatterns = [
    *router.urls,
    re_path(rf"^integrations/{_ID}/alertmanager/?$", doors.alertmanager, name="integration-alertmanager"),
    re_path(rf"^integrations/{_ID}/alertmanager/{_TOKEN}/?$", doors.alertmanager,
            name="integration-alertmanager-token"),
    re_path(rf"^integrations/{_ID}/generic/?$", doors.generic, name="integration-generic"),
    re_path(rf"^integrations/{_ID}/generic/{_TOKEN}/?$", doors.generic, name="integration-generic-token"),
]
