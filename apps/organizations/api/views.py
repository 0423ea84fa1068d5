"""API for an organization's own configuration. Organizations themselves are created by platform
admins in the Django admin; members are added there too (user accounts are platform-level)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response

from apps.audit.services import record_event, snapshot
from apps.core.api.viewsets import OrgScopedCreateListViewSet, OrgScopedMixin
from apps.core.roles import Role
from apps.organizations.api.serializers import (
    AgentTokenSerializer,
    MembershipSerializer,
    NewAgentTokenSerializer,
    OrganizationSerializer,
)
from apps.organizations.models import AgentToken, Membership
from apps.organizations.services import change_role, issue_token, remove_member, revoke_token


class OrganizationViewSet(OrgScopedMixin, viewsets.GenericViewSet):
    """`GET/PATCH /api/v1/organization`: the caller's organization."""

    serializer_class = OrganizationSerializer
    required_roles = {"current": Role.VIEWER, "update_current": Role.ADMIN}

    def current(self, request: Request) -> Response:
        return Response(self.get_serializer(request.organization).data)

    def update_current(self, request: Request) -> Response:
        organization = request.organization
        serializer = self.get_serializer(organization, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        before = snapshot(organization)
        serializer.save()
        record_event(action="organization.updated", actor=_actor(request),
                     organization=organization, target=organization, before=before, after=snapshot(organization))
        return Response(serializer.data)


class MembershipViewSet(OrgScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                        mixins.UpdateModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """Members of the organization: everyone may list; admins change roles and remove members."""

    queryset = Membership.objects.select_related("user")
    serializer_class = MembershipSerializer
    required_roles = {"list": Role.VIEWER, "retrieve": Role.VIEWER, "update": Role.ADMIN,
                      "partial_update": Role.ADMIN, "destroy": Role.ADMIN}

    def get_queryset(self) -> Any:
        return self.queryset.filter(organization=self.request.organization).order_by("-created_at")

    def perform_update(self, serializer: MembershipSerializer) -> None:
        role = serializer.validated_data.get("role", serializer.instance.role)
        if role == Role.OWNER and self.request.role != Role.OWNER:
            raise PermissionDenied("Only an owner can make someone an owner.")
        serializer.instance = change_role(membership=serializer.instance, role=role, actor=_actor(self.request))

    def perform_destroy(self, instance: Membership) -> None:
        remove_member(membership=instance, actor=_actor(self.request))


class AgentTokenViewSet(OrgScopedCreateListViewSet):
    """Agent tokens: admins issue (the token is in the creation reply only), list and revoke."""

    queryset = AgentToken.objects.select_related("created_by")
    serializer_class = AgentTokenSerializer
    required_roles = {"list": Role.ADMIN, "retrieve": Role.ADMIN, "create": Role.ADMIN, "revoke": Role.ADMIN}

    @extend_schema(responses=NewAgentTokenSerializer)
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        token, plaintext = issue_token(organization=request.organization, actor=_actor(request),
                                       **serializer.validated_data)
        data = NewAgentTokenSerializer(token, context={"plaintext": plaintext}).data
        return Response(data, status=status.HTTP_201_CREATED)

    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, public_id: str | None = None) -> Response:
        token = revoke_token(token=self.get_object(), actor=_actor(request))
        return Response(self.get_serializer(token).data)


def _actor(request: Request) -> Any:
    """The audit actor of an API request: the token for agents, the user for sessions."""
    return request.token if getattr(request, "token", None) is not None else request.user
