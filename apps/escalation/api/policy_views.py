"""``/api/v1/escalation-policies`` (steps inline), ``/api/v1/escalation-routes`` (rule -> policy) and
``/api/v1/contact-methods`` (members manage their own, admins and config tokens everyone's). Writes go
through apps.escalation.policy_services (validated, audited in the same transaction)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.api.actors import request_actor
from apps.core.api.viewsets import CONFIG_REQUIRED_SCOPES, OrgScopedViewSet
from apps.core.roles import Role, role_at_least
from apps.core.scopes import TokenScope
from apps.escalation import policy_services as services
from apps.escalation import verification
from apps.escalation.api.policy_serializers import (
    ContactMethodSerializer,
    PolicySerializer,
    RoutingSerializer,
    step_data,
)
from apps.escalation.api.views import UUID_PATTERN
from apps.escalation.models import ContactMethod, EscalationPolicy, RulePolicy


class PolicyViewSet(OrgScopedViewSet):
    """Escalation policies; PUT/PATCH with ``steps`` replaces all steps at once."""

    queryset = EscalationPolicy.objects.all()
    serializer_class = PolicySerializer
    lookup_value_regex = UUID_PATTERN
    required_scopes = CONFIG_REQUIRED_SCOPES

    def get_queryset(self) -> Any:
        return super().get_queryset().prefetch_related("steps__users", "steps__channels", "steps__schedule")

    def perform_create(self, serializer: PolicySerializer) -> None:
        data = serializer.validated_data
        serializer.instance = services.create_policy(
            organization=self.request.organization, actor=request_actor(self.request), name=data["name"],
            description=data.get("description", ""), repeat_count=data.get("repeat_count", 0),
            ack_timeout_seconds=data.get("ack_timeout_seconds", 0), steps=step_data(data.get("steps", [])))

    def perform_update(self, serializer: PolicySerializer) -> None:
        data = serializer.validated_data
        serializer.instance = services.update_policy(
            policy=serializer.instance, actor=request_actor(self.request), name=data.get("name"),
            description=data.get("description"), repeat_count=data.get("repeat_count"),
            ack_timeout_seconds=data.get("ack_timeout_seconds"),
            steps=step_data(data["steps"]) if "steps" in data else None)

    def perform_destroy(self, instance: EscalationPolicy) -> None:
        services.delete_policy(policy=instance, actor=request_actor(self.request))


class RoutingViewSet(OrgScopedViewSet):
    """Which policy each alert rule escalates through (one per rule)."""

    queryset = RulePolicy.objects.select_related("rule", "policy")
    serializer_class = RoutingSerializer
    lookup_value_regex = UUID_PATTERN
    required_scopes = CONFIG_REQUIRED_SCOPES

    def perform_create(self, serializer: RoutingSerializer) -> None:
        data = serializer.validated_data
        if RulePolicy.objects.filter(rule=data["rule"]).exists():
            raise ValidationError({"rule": "This rule already has an escalation policy; change that route."})
        serializer.instance = services.route_rule(rule=data["rule"], policy=data["policy"],
                                                  actor=request_actor(self.request))

    def perform_update(self, serializer: RoutingSerializer) -> None:
        data = serializer.validated_data
        rule = data.get("rule", serializer.instance.rule)
        if rule.pk != serializer.instance.rule_id:
            raise ValidationError({"rule": "A route's rule cannot change; delete it and route the other rule."})
        serializer.instance = services.route_rule(rule=rule, policy=data.get("policy", serializer.instance.policy),
                                                  actor=request_actor(self.request))

    def perform_destroy(self, instance: RulePolicy) -> None:
        services.unroute_rule(route=instance, actor=request_actor(self.request))


class ContactMethodViewSet(OrgScopedViewSet):
    """Contact methods: every member manages their own; admins (and tokens, by scope) manage everyone's."""

    queryset = ContactMethod.objects.select_related("user")
    serializer_class = ContactMethodSerializer
    lookup_value_regex = UUID_PATTERN
    required_roles = {"list": Role.VIEWER, "retrieve": Role.VIEWER, "create": Role.VIEWER,
                      "update": Role.VIEWER, "partial_update": Role.VIEWER, "destroy": Role.VIEWER,
                      "send_verification": Role.VIEWER}
    required_scopes = {**CONFIG_REQUIRED_SCOPES, "send_verification": TokenScope.CONFIG}

    def _manages_all(self) -> bool:
        if getattr(self.request, "token", None) is not None:
            return True
        return role_at_least(getattr(self.request, "role", None), Role.ADMIN)

    def get_queryset(self) -> Any:
        queryset = super().get_queryset()
        if self.action == "list" and not self._manages_all():
            return queryset.filter(user=self.request.user)
        return queryset

    def get_object(self) -> ContactMethod:
        """Another organization's method is a 404 (the scoped queryset); a colleague's is a 403: members of
        one organization may know a colleague has a contact method, never see or change its address."""
        method = super().get_object()
        if method.user_id != self.request.user.pk and not self._manages_all():
            raise PermissionDenied("Only admins see and manage other members' contact methods.")
        return method

    def _target_user(self, data: dict[str, Any], default: Any) -> Any:
        user = data.get("user", default)
        if user is None:
            raise ValidationError({"user": "A token must name the contact method's user."})
        if user.pk != getattr(self.request.user, "pk", None) and not self._manages_all():
            raise PermissionDenied("Only admins manage other members' contact methods.")
        return user

    def perform_create(self, serializer: ContactMethodSerializer) -> None:
        data = dict(serializer.validated_data)
        own = self.request.user if self.request.user.is_authenticated else None
        user = self._target_user(data, own)
        if not self._manages_all():
            data.pop("verified", None)  # a member cannot vouch for their own address
        data.pop("user", None)
        serializer.instance = services.create_contact_method(
            organization=self.request.organization, user=user, actor=request_actor(self.request), **data)

    def perform_update(self, serializer: ContactMethodSerializer) -> None:
        data = dict(serializer.validated_data)
        if "user" in data and data["user"].pk != serializer.instance.user_id:
            raise ValidationError({"user": "A contact method's user cannot change."})
        data.pop("user", None)
        if not self._manages_all():
            data.pop("verified", None)
        serializer.instance = services.update_contact_method(method=serializer.instance,
                                                             actor=request_actor(self.request), **data)

    def perform_destroy(self, instance: ContactMethod) -> None:
        services.delete_contact_method(method=instance, actor=request_actor(self.request))

    @extend_schema(request=None, responses=ContactMethodSerializer,
                   summary="Send the contact method its verification link again")
    @action(detail=True, methods=["post"], url_path="send-verification")
    def send_verification(self, request: Request, public_id: str | None = None) -> Response:
        """Its owner (or an admin, or a config token) re-sends the link; 400 naming ``verified`` when it is
        verified already, ``enabled`` when it is disabled."""
        method = verification.send_verification(method=self.get_object(), actor=request_actor(request))
        return Response(self.get_serializer(method).data)
