"""``/api/v1/alerts``: the organization's alerts (``?state=firing,acknowledged&severity=critical&rule=<id>``),
one alert with its timeline and notification ledger, and ``POST …/acknowledge`` / ``…/resolve`` through the
lifecycle services (audited; an alert in the wrong state is a 409 saying which state it is in)."""

from __future__ import annotations

import uuid
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Q
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter

from apps.alerts.choices import AlertState, Severity
from apps.alerts.models import Alert, AlertEvent, Notification
from apps.alerts.services.lifecycle import AlertStateError, acknowledge_alert, resolve_alert
from apps.core.api.actors import request_actor
from apps.core.api.viewsets import OrgScopedReadOnlyViewSet
from apps.core.roles import Role
from apps.core.scopes import TokenScope

LEDGER_LIMIT = 50


class AlertSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    rule = serializers.SerializerMethodField()
    host = serializers.SerializerMethodField()
    acknowledged_by = serializers.SerializerMethodField()

    class Meta:
        model = Alert
        fields = ["id", "rule", "state", "severity", "labels", "fingerprint", "value", "threshold", "baseline",
                  "summary", "description", "host", "pending_since", "started_at", "acknowledged_at",
                  "acknowledged_by", "resolved_at", "last_evaluated_at", "suppressed_reason", "inhibited_by",
                  "notified_firing", "last_notified_at", "created_at", "updated_at"]
        read_only_fields = fields

    def get_rule(self, alert: Alert) -> dict[str, str]:
        return {"id": str(alert.rule.public_id), "name": alert.rule.name}

    def get_host(self, alert: Alert) -> dict[str, str] | None:
        return {"id": str(alert.host.public_id), "name": alert.host.name} if alert.host else None

    def get_acknowledged_by(self, alert: Alert) -> str | None:
        return alert.acknowledged_by.get_username() if alert.acknowledged_by else None


class AlertEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AlertEvent
        fields = ["time", "from_state", "to_state", "actor_type", "actor_repr", "value", "threshold", "message",
                  "details"]
        read_only_fields = fields


class LedgerSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    channel = serializers.CharField(source="channel.name", read_only=True)

    class Meta:
        model = Notification
        fields = ["id", "channel", "kind", "status", "attempts", "last_error", "suppressed_reason", "created_at",
                  "next_attempt_at", "delivered_at"]
        read_only_fields = fields


class AlertDetailSerializer(AlertSerializer):
    events = serializers.SerializerMethodField()
    notifications = serializers.SerializerMethodField()

    class Meta(AlertSerializer.Meta):
        fields = [*AlertSerializer.Meta.fields, "events", "notifications"]
        read_only_fields = fields

    def get_events(self, alert: Alert) -> list[dict[str, Any]]:
        return AlertEventSerializer(alert.events.order_by("time", "pk"), many=True).data

    def get_notifications(self, alert: Alert) -> list[dict[str, Any]]:
        """Messages about this alert: its own rows and its group's messages that listed it."""
        mentions = Q(alert=alert)
        if alert.group_id:
            mentions |= Q(group_id=alert.group_id, payload__contains={"alerts": [{"fingerprint": alert.fingerprint}]})
        rows = (Notification.objects.filter(mentions, organization_id=alert.organization_id)
                .select_related("channel").order_by("-created_at", "-pk")[:LEDGER_LIMIT])
        return LedgerSerializer(rows, many=True).data


def _choices(params: Any, name: str, allowed: list[str]) -> list[str]:
    values = [v.strip() for v in params.get(name, "").split(",") if v.strip()]
    unknown = [v for v in values if v not in allowed]
    if unknown:
        raise ValidationError({name: f"Unknown {name} {unknown[0]!r}: expected one of {', '.join(allowed)} "
                                     "(a comma-separated list is allowed)."})
    return values


def filter_alerts(queryset: Any, params: Any) -> Any:
    """state= and severity= (comma lists), rule=<rule id>. A bad value raises ValidationError naming it."""
    states = _choices(params, "state", AlertState.values)
    if states:
        queryset = queryset.filter(state__in=states)
    severities = _choices(params, "severity", Severity.values)
    if severities:
        queryset = queryset.filter(severity__in=severities)
    if params.get("rule"):
        try:
            rule_id = uuid.UUID(params["rule"])
        except ValueError:
            raise ValidationError({"rule": "Expected the rule's id (a UUID)."}) from None
        queryset = queryset.filter(rule__public_id=rule_id)
    return queryset



class AlertViewSet(OrgScopedReadOnlyViewSet):
    """Alerts of the caller's organization. Reading needs a viewer (or a read token); acknowledging and
    resolving an editor (or a config token)."""

    queryset = Alert.objects.select_related("rule", "host", "acknowledged_by")
    serializer_class = AlertSerializer
    required_roles = {"list": Role.VIEWER, "retrieve": Role.VIEWER, "acknowledge": Role.EDITOR,
                      "resolve": Role.EDITOR}
    required_scopes = {"list": TokenScope.READ, "retrieve": TokenScope.READ, "acknowledge": TokenScope.CONFIG,
                       "resolve": TokenScope.CONFIG}

    def get_queryset(self) -> Any:
        queryset = super().get_queryset()
        if self.action == "list":
            queryset = filter_alerts(queryset, self.request.query_params)
        return queryset

    def get_serializer_class(self) -> Any:
        return AlertSerializer if self.action == "list" else AlertDetailSerializer

    def _transition(self, service: Any) -> Response:
        alert = self.get_object()
        try:
            alert = service(alert=alert, actor=request_actor(self.request))
        except AlertStateError as exc:
            return Response({"detail": str(exc), "state": exc.state}, status=status.HTTP_409_CONFLICT)
        alert.refresh_from_db()
        return Response(AlertDetailSerializer(alert, context=self.get_serializer_context()).data)

    @action(detail=True, methods=["post"])
    def acknowledge(self, request: Request, public_id: str | None = None) -> Response:
        """Acknowledge a firing alert (409 otherwise)."""
        return self._transition(acknowledge_alert)

    @action(detail=True, methods=["post"])
    def resolve(self, request: Request, public_id: str | None = None) -> Response:
        """Resolve an open alert by hand (409 if it is already resolved)."""
        return self._transition(resolve_alert)


router = SimpleRouter()
# DRF 3.16 turns any truthy `trailing_slash` argument into "/"; the attribute is used verbatim in the regexes.
router.trailing_slash = "/?"
router.register("alerts", AlertViewSet, basename="alert")

urlpatterns = router.urls
