"""``/api/v1/escalation-group-routes`` (label matchers -> policy, first match by position wins) and
``/api/v1/group-escalations`` (each alert group's escalation run, by the group's id, with ``acknowledge``
and ``resolve`` acting on every open alert of the group). Writes go through apps.escalation.group_services."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from apps.alerts.models import AlertRule
from apps.alerts.services.lifecycle import AlertStateError
from apps.core.api.actors import request_actor
from apps.core.api.pagination import CursorPagination
from apps.core.api.viewsets import CONFIG_REQUIRED_SCOPES, READ_REQUIRED_SCOPES, OrgScopedMixin, OrgScopedViewSet
from apps.core.roles import Role
from apps.core.scopes import TokenScope
from apps.escalation import group_services as services
from apps.escalation.api.policy_serializers import OrgRefField
from apps.escalation.api.views import UUID_PATTERN
from apps.escalation.choices import RunStatus
from apps.escalation.models import EscalationPolicy, GroupEscalationRun, GroupRoute


class GroupRouteSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    position = serializers.IntegerField(min_value=0, max_value=2**31 - 1, default=0)
    matchers = serializers.JSONField(default=dict, help_text='label -> value, all must equal; {} matches any group')
    rule = OrgRefField(AlertRule, required=False, allow_null=True, default=None)
    policy = OrgRefField(EscalationPolicy)

    class Meta:
        model = GroupRoute
        fields = ["id", "name", "position", "matchers", "rule", "policy", "enabled", "created_at", "updated_at"]
        read_only_fields = ["created_at", "updated_at"]
        validators: list = []  # the service reports a duplicate name as a 400 naming ``name``

    def validate_matchers(self, value: Any) -> dict[str, str]:
        try:
            return services.clean_matchers(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict["matchers"]) from exc

    def validate_name(self, value: str) -> str:
        value = value.strip()
        organization = self.context["request"].organization
        taken = GroupRoute.objects.for_org(organization).filter(name=value)
        if self.instance is not None:
            taken = taken.exclude(pk=self.instance.pk)
        if taken.exists():
            raise serializers.ValidationError("This organization already has a group route with this name.")
        return value


class GroupRouteViewSet(OrgScopedViewSet):
    """Group routes of the organization, in the order they are tried."""

    queryset = GroupRoute.objects.select_related("rule", "policy").order_by("position", "created_at", "pk")
    serializer_class = GroupRouteSerializer
    lookup_value_regex = UUID_PATTERN
    required_scopes = CONFIG_REQUIRED_SCOPES

    def perform_create(self, serializer: GroupRouteSerializer) -> None:
        serializer.instance = services.create_group_route(
            organization=self.request.organization, actor=request_actor(self.request), **serializer.validated_data)

    def perform_update(self, serializer: GroupRouteSerializer) -> None:
        data = dict(serializer.validated_data)
        if "rule" not in self.request.data:
            data.pop("rule", None)  # PATCH without ``rule`` keeps it; an explicit null clears it
        serializer.instance = services.update_group_route(route=serializer.instance,
                                                          actor=request_actor(self.request), **data)

    def perform_destroy(self, instance: GroupRoute) -> None:
        services.delete_group_route(route=instance, actor=request_actor(self.request))


class GroupEscalationSerializer(serializers.ModelSerializer):
    group = serializers.UUIDField(source="group.public_id", read_only=True)
    rule = serializers.UUIDField(source="group.rule.public_id", read_only=True)
    group_labels = serializers.JSONField(source="group.group_labels", read_only=True)
    route = serializers.SerializerMethodField()
    policy = serializers.SerializerMethodField()
    lead_alert = serializers.SerializerMethodField()

    class Meta:
        model = GroupEscalationRun
        fields = ["group", "rule", "group_labels", "route", "policy", "lead_alert", "status", "step_index", "repeat",
                  "steps_done", "next_step_at", "started_at", "updated_at"]
        read_only_fields = fields

    def get_route(self, run: GroupEscalationRun) -> str | None:
        return str(run.route.public_id) if run.route else None

    def get_policy(self, run: GroupEscalationRun) -> str | None:
        return str(run.policy.public_id) if run.policy else None

    def get_lead_alert(self, run: GroupEscalationRun) -> str | None:
        return str(run.lead_alert.public_id) if run.lead_alert else None


class GroupEscalationPagination(CursorPagination):
    ordering = ("-updated_at", "-id")


class GroupEscalationViewSet(OrgScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                             viewsets.GenericViewSet):
    """Each alert group's escalation (``?status=active``), addressed by the group's id."""

    queryset = GroupEscalationRun.objects.select_related("group__rule", "route", "policy", "lead_alert")
    serializer_class = GroupEscalationSerializer
    pagination_class = GroupEscalationPagination
    lookup_field = "group__public_id"
    lookup_url_kwarg = "public_id"
    lookup_value_regex = UUID_PATTERN
    required_roles = {"list": Role.VIEWER, "retrieve": Role.VIEWER, "acknowledge": Role.EDITOR,
                      "resolve": Role.EDITOR}
    required_scopes = {**READ_REQUIRED_SCOPES, "acknowledge": TokenScope.CONFIG, "resolve": TokenScope.CONFIG}

    def get_queryset(self) -> Any:
        queryset = super().get_queryset()
        wanted = self.request.query_params.get("status")
        if wanted:
            if wanted not in RunStatus.values:
                raise ValidationError({"status": f"One of {', '.join(RunStatus.values)}."})
            queryset = queryset.filter(status=wanted)
        return queryset

    def _act(self, service: Any) -> Response:
        run = self.get_object()
        try:
            done = service(group=run.group, actor=request_actor(self.request))
        except AlertStateError as exc:
            return Response({"detail": str(exc), "state": exc.state}, status=status.HTTP_409_CONFLICT)
        run.refresh_from_db()
        return Response({**self.get_serializer(run).data, "alerts": [str(a.public_id) for a in done]})

    @extend_schema(request=None, responses=GroupEscalationSerializer,
                   summary="Acknowledge every firing alert of the group (its escalation stands down)")
    @action(detail=True, methods=["post"])
    def acknowledge(self, request: Request, public_id: str | None = None) -> Response:
        """409 when the group has no firing alert left."""
        return self._act(services.acknowledge_group)

    @extend_schema(request=None, responses=GroupEscalationSerializer,
                   summary="Resolve every open alert of the group (its escalation ends)")
    @action(detail=True, methods=["post"])
    def resolve(self, request: Request, public_id: str | None = None) -> Response:
        """409 when the group has no open alert left."""
        return self._act(services.resolve_group)
