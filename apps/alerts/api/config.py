"""`/api/v1/rules` and `/api/v1/channels`: alert configuration as code. Writes go through
apps.alerts.services.config (validated, audited, due at once); the API's field names are the issue's public
contract (``window``, ``for``, ``labels`` as a matcher string) and are mapped onto the model's here, errors
included, so a bad field is a 400 naming the field the client sent.

A channel's ``signing_secret`` (and its header values and Slack url, which are credentials too) is shown
only to callers who may change the channel: config tokens and editors and up. Read tokens and viewers see
that the channel exists and where it points, not how to forge or spam it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, extend_schema_view
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter

from apps.alerts.choices import ChannelKind, RuleKind
from apps.alerts.models import AlertRule, NotificationChannel
from apps.alerts.services import config as services
from apps.core.api.actors import request_actor
from apps.core.api.params import bool_param
from apps.core.api.viewsets import CONFIG_REQUIRED_SCOPES, DEFAULT_REQUIRED_ROLES, OrgScopedViewSet
from apps.core.roles import Role, role_at_least
from apps.core.scopes import TokenScope, scope_allows
from apps.hosts.api.serializers import OrgScopedRelatedField

T = TypeVar("T")

#: Model field -> API field, where they differ (the API's names are the public contract).
RULE_API_NAMES: dict[str, str] = {
    "label_matchers": "labels",
    "labels": "alert_labels",
    "window_seconds": "window",
    "for_seconds": "for",
    "keep_firing_for_seconds": "keep_firing_for",
    "summary_template": "summary",
    "repeat_interval_seconds": "repeat_interval",
    "host_names": "hosts",
    "evaluation_interval_seconds": "evaluation_interval",
}
MASK = "********"



def _may_configure(request: Request) -> bool:
    scope = getattr(request, "token_scope", None)
    if scope is not None:
        return scope_allows(scope, TokenScope.CONFIG)
    return role_at_least(getattr(request, "role", None), Role.EDITOR)


def _call(write: Callable[[], T], names: dict[str, str] | None = None) -> T:
    """Run a service write; its ValidationError (model field names) becomes DRF's, with the API's names."""
    try:
        return write()
    except DjangoValidationError as exc:
        if not hasattr(exc, "error_dict"):
            raise serializers.ValidationError({"detail": exc.messages}) from exc
        names = names or {}
        raise serializers.ValidationError(
            {names.get(field, field): messages for field, messages in exc.message_dict.items()}) from exc


# Several serializers of the API have a ``kind`` with different choices; drf-spectacular would name all but
# one by a hash (and warn). Each kind gets its own schema component instead. (Class-level: DRF deep-copies
# field instances, which would drop an annotation made on one.)
@extend_schema_field({"type": "string", "enum": list(ChannelKind.values)}, component_name="ChannelKind")
class ChannelKindField(serializers.ChoiceField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=ChannelKind.choices, **kwargs)


@extend_schema_field({"type": "string", "enum": list(RuleKind.values)}, component_name="RuleKind")
class RuleKindField(serializers.ChoiceField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=RuleKind.choices, **kwargs)


# --- channels ----------------------------------------------------------------------------------------


class ChannelSerializer(serializers.ModelSerializer):
    """``url`` for webhook and slack, ``address`` for email; ``signing_secret`` is read-only (rotate it with
    ``POST /api/v1/channels/{id}/rotate-secret``) and shown only to callers who may change the channel."""

    id = serializers.UUIDField(source="public_id", read_only=True)
    kind = ChannelKindField()
    url = serializers.CharField(max_length=2000, required=False, allow_blank=True,
                                help_text="webhook and slack: http(s) url to POST to")
    address = serializers.CharField(max_length=254, required=False, allow_blank=True,
                                    help_text="email: the recipient")
    headers = serializers.DictField(child=serializers.CharField(allow_blank=True, trim_whitespace=False),
                                    required=False, help_text="webhook: extra request headers")
    signing_secret = serializers.CharField(read_only=True, required=False,
                                           help_text="HMAC-SHA256 key of the X-FiberStack-Signature header; only "
                                                     "for config tokens and editors and up")
    rules = serializers.SlugRelatedField(slug_field="public_id", many=True, read_only=True,
                                         help_text="ids of the rules that notify this channel")

    class Meta:
        model = NotificationChannel
        fields = ["id", "name", "kind", "url", "address", "headers", "enabled", "rate_limit_per_minute",
                  "signing_secret", "rules", "created_at", "updated_at"]
        read_only_fields = ["created_at", "updated_at"]
        validators: list = []  # the service checks name uniqueness within the organization

    def to_representation(self, instance: NotificationChannel) -> dict[str, Any]:
        data = super().to_representation(instance)
        if not self.context.get("show_secrets", False):
            data.pop("signing_secret", None)
            data["headers"] = {name: MASK for name in data.get("headers") or {}}
            if instance.kind == "slack" and data.get("url"):
                parts = urlsplit(data["url"])
                data["url"] = f"{parts.scheme}://{parts.netloc}/{MASK}"
        return data


class ChannelReferenceField(OrgScopedRelatedField):
    default_error_messages = {
        "does_not_exist": "No such channel in this organization: {value}.",
        "invalid": "Expected a channel id (a UUID).",
    }


# --- rules -------------------------------------------------------------------------------------------


class RuleSerializer(serializers.ModelSerializer):
    """A rule in the API's names: ``labels`` is the matcher string (query API syntax), ``alert_labels`` the
    labels added to every alert; durations are whole seconds (``window``, ``for``, ``keep_firing_for``,
    ``repeat_interval``, ``evaluation_interval``, ``absence_seconds``, ``training_seconds``)."""

    id = serializers.UUIDField(source="public_id", read_only=True)
    kind = RuleKindField(required=False)
    labels = serializers.CharField(source="label_matchers", max_length=2000, required=False, allow_blank=True,
                                   help_text='label matchers in the query API syntax, e.g. cpu="total",mode!~"idle"')
    window = serializers.IntegerField(source="window_seconds", required=False, min_value=1,
                                      max_value=services.MAX_WINDOW_SECONDS, help_text="seconds the reducer covers")
    keep_firing_for = serializers.IntegerField(source="keep_firing_for_seconds", required=False, min_value=0,
                                               max_value=services.MAX_KEEP_FIRING_FOR_SECONDS)
    alert_labels = serializers.DictField(source="labels", child=serializers.CharField(allow_blank=True),
                                         required=False, help_text="labels added to every alert of the rule")
    summary = serializers.CharField(source="summary_template", max_length=1000, required=False, allow_blank=True)
    repeat_interval = serializers.IntegerField(source="repeat_interval_seconds", required=False, min_value=0,
                                               max_value=services.MAX_REPEAT_INTERVAL_SECONDS,
                                               help_text="seconds between reminders; 0 = never")
    hosts = serializers.ListField(source="host_names", child=serializers.CharField(max_length=255), required=False,
                                  help_text="only these hosts (empty: all)")
    host_tags = serializers.DictField(child=serializers.CharField(allow_blank=True), required=False)
    group_by = serializers.ListField(child=serializers.CharField(max_length=200), required=False)
    evaluation_interval = serializers.IntegerField(source="evaluation_interval_seconds", required=False, min_value=1,
                                                   max_value=services.MAX_EVALUATION_INTERVAL_SECONDS)
    channels = ChannelReferenceField(queryset=NotificationChannel.objects.all(), many=True, required=False)

    class Meta:
        model = AlertRule
        fields = ["id", "name", "description", "enabled", "kind", "metric", "labels", "host_environment",
                  "host_tags", "hosts", "reducer", "window", "comparator", "critical", "warning",
                  "resolve_threshold", "keep_firing_for", "absence_seconds", "anomaly_method", "anomaly_k",
                  "training_seconds", "seasonal", "alert_labels", "summary", "description_template", "channels",
                  "repeat_interval", "group_by", "evaluation_interval", "system_key", "next_evaluation_at",
                  "last_evaluated_at", "last_error", "last_error_at", "consecutive_errors", "created_at",
                  "updated_at"]
        read_only_fields = ["system_key", "next_evaluation_at", "last_evaluated_at", "last_error", "last_error_at",
                            "consecutive_errors", "created_at", "updated_at"]
        validators: list = []  # the service checks name uniqueness within the organization

    def get_fields(self) -> dict[str, serializers.Field]:
        """``for`` is a Python keyword, so it cannot be declared in the class body; it goes after ``warning``."""
        fields = super().get_fields()
        ordered: dict[str, serializers.Field] = {}
        for name, field in fields.items():
            ordered[name] = field
            if name == "warning":
                ordered["for"] = serializers.IntegerField(
                    source="for_seconds", required=False, min_value=0, max_value=services.MAX_FOR_SECONDS,
                    help_text="pending period (seconds) before the alert fires")
        return ordered


# --- viewsets ----------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="List notification channels"),
    create=extend_schema(summary="Create a notification channel"),
)
class ChannelViewSet(OrgScopedViewSet):
    """Notification channels (webhook, email, slack). Deleting one detaches it from the rules using it."""

    queryset = NotificationChannel.objects.prefetch_related("rules")
    serializer_class = ChannelSerializer
    required_roles = {**DEFAULT_REQUIRED_ROLES, "rotate_secret": Role.EDITOR}
    required_scopes = {**CONFIG_REQUIRED_SCOPES, "rotate_secret": TokenScope.CONFIG}

    def get_queryset(self) -> Any:
        """Channels another app manages (a person's contact address) do not exist here: 404 on every action."""
        return super().get_queryset().user_configured()

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()
        context["show_secrets"] = _may_configure(self.request) if hasattr(self.request, "organization") else False
        return context

    def perform_create(self, serializer: ChannelSerializer) -> None:
        serializer.instance = _call(lambda: services.create_channel(
            organization=self.request.organization, actor=request_actor(self.request), **serializer.validated_data))

    def perform_update(self, serializer: ChannelSerializer) -> None:
        serializer.instance = _call(lambda: services.update_channel(
            channel=serializer.instance, actor=request_actor(self.request), **serializer.validated_data))

    def perform_destroy(self, instance: NotificationChannel) -> None:
        services.delete_channel(channel=instance, actor=request_actor(self.request))

    @extend_schema(request=None, responses=ChannelSerializer, summary="Give the channel a new signing secret")
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request: Request, public_id: str | None = None) -> Response:
        channel = services.rotate_channel_secret(channel=self.get_object(), actor=request_actor(request))
        return Response(self.get_serializer(channel).data)


@extend_schema_view(
    list=extend_schema(summary="List alert rules", parameters=[
        OpenApiParameter("kind", str, enum=["threshold", "absence", "anomaly"]),
        OpenApiParameter("enabled", bool),
        OpenApiParameter("metric", str),
    ]),
    create=extend_schema(summary="Create an alert rule"),
)
class RuleViewSet(OrgScopedViewSet):
    """Alert rules. A created or changed rule is evaluated on the next beat tick (within ~2 s). System
    rules (``system_key`` set, e.g. host down) can be tuned or disabled but not deleted (409)."""

    queryset = AlertRule.objects.prefetch_related("channels")
    serializer_class = RuleSerializer
    required_scopes = CONFIG_REQUIRED_SCOPES

    def get_queryset(self) -> Any:
        queryset = super().get_queryset()
        if self.action != "list":
            return queryset
        params = self.request.query_params
        if params.get("kind"):
            queryset = queryset.filter(kind=params["kind"])
        enabled = bool_param(params, "enabled")
        if enabled is not None:
            queryset = queryset.filter(enabled=enabled)
        if params.get("metric"):
            queryset = queryset.filter(metric=params["metric"])
        return queryset

    def perform_create(self, serializer: RuleSerializer) -> None:
        data = dict(serializer.validated_data)
        serializer.instance = _call(lambda: services.create_rule(
            organization=self.request.organization, actor=request_actor(self.request), **data), RULE_API_NAMES)

    def perform_update(self, serializer: RuleSerializer) -> None:
        data = dict(serializer.validated_data)
        serializer.instance = _call(lambda: services.update_rule(
            rule=serializer.instance, actor=request_actor(self.request), **data), RULE_API_NAMES)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        rule = self.get_object()
        try:
            services.delete_rule(rule=rule, actor=request_actor(request))
        except services.SystemRuleError as exc:
            return Response({"detail": exc.message_dict["system_key"][0], "system_key": rule.system_key},
                            status=status.HTTP_409_CONFLICT)
        return Response(status=status.HTTP_204_NO_CONTENT)


router = SimpleRouter()
# See apps/hosts/api/urls.py: the attribute (not the argument) keeps the trailing slash optional.
router.trailing_slash = "/?"
router.register("channels", ChannelViewSet, basename="alert-channel")
router.register("rules", RuleViewSet, basename="alert-rule")

urlpatterns = router.urls
