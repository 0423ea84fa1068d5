"""API for an organization's own configuration. Organizations themselves are created by platform
admins in the Django admin; user accounts are platform-level too, so the API adds existing users only.

Members and tokens are managed by signed-in owners and admins only: no token scope reaches them (their
views declare no `required_scopes`), so a leaked token can neither mint tokens nor add members."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from apps.audit.services import record_event, snapshot
from apps.core.api.actors import request_actor
from apps.core.api.viewsets import OrgScopedCreateListViewSet, OrgScopedMixin
from apps.core.roles import Role
from apps.core.scopes import TokenScope
from apps.organizations.api.serializers import (
    AgentTokenSerializer,
    MembershipSerializer,
    NewAgentTokenSerializer,
    NewMembershipSerializer,
    OrganizationSerializer,
)
from apps.organizations.models import AgentToken, Membership
from apps.organizations.services import add_member, change_role, issue_token, remove_member, revoke_token


class OrganizationViewSet(OrgScopedMixin, viewsets.GenericViewSet):
    """`GET/PATCH /api/v1/organization`: the caller's organization."""

    serializer_class = OrganizationSerializer
    required_roles = {"current": Role.VIEWER, "update_current": Role.ADMIN}
    # Read tokens may see which organization they belong to; its settings (retention, auto-registration)
    # are changed by signed-in admins only.
    required_scopes = {"current": TokenScope.READ}

    def current(self, request: Request) -> Response:
        return Response(self.get_serializer(request.organization).data)

    def update_current(self, request: Request) -> Response:
        organization = request.organization
        serializer = self.get_serializer(organization, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        before = snapshot(organization)
        serializer.save()
        record_event(action="organization.updated", actor=request_actor(request),
                     organization=organization, target=organization, before=before, after=snapshot(organization))
        return Response(serializer.data)


class MembershipViewSet(OrgScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                        mixins.UpdateModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """Members of the organization, for owners and admins: list, add (an existing user), change a role,
    remove. Only owners grant owner or touch an owner; the last owner stays (apps.organizations.services)."""

    queryset = Membership.objects.select_related("user")
    serializer_class = MembershipSerializer
    required_roles = {"list": Role.ADMIN, "retrieve": Role.ADMIN, "create": Role.ADMIN, "update": Role.ADMIN,
                      "partial_update": Role.ADMIN, "destroy": Role.ADMIN}

    def get_queryset(self) -> Any:
        return self.queryset.filter(organization=self.request.organization).order_by("-created_at")

    @extend_schema(request=NewMembershipSerializer, responses={201: MembershipSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = NewMembershipSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        membership = add_member(organization=request.organization, user=serializer.validated_data["username"],
                                role=serializer.validated_data["role"], actor=request.user,
                                acting_role=request.role)
        return Response(self.get_serializer(membership).data, status=status.HTTP_201_CREATED)

    def perform_update(self, serializer: MembershipSerializer) -> None:
        role = serializer.validated_data.get("role", serializer.instance.role)
        serializer.instance = change_role(membership=serializer.instance, role=role, actor=self.request.user,
                                          acting_role=self.request.role)

    def perform_destroy(self, instance: Membership) -> None:
        remove_member(membership=instance, actor=self.request.user, acting_role=self.request.role)


class AgentTokenViewSet(OrgScopedCreateListViewSet):
    """Agent tokens: admins issue (the token is in the creation reply only), list and revoke."""

    queryset = AgentToken.objects.select_related("created_by")
    serializer_class = AgentTokenSerializer
    required_roles = {"list": Role.ADMIN, "retrieve": Role.ADMIN, "create": Role.ADMIN, "revoke": Role.ADMIN}

    @extend_schema(responses=NewAgentTokenSerializer)
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        token, plaintext = issue_token(organization=request.organization, actor=request_actor(request),
                                       **serializer.validated_data)
        data = NewAgentTokenSerializer(token, context={"plaintext": plaintext}).data
        return Response(data, status=status.HTTP_201_CREATED)

    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, public_id: str | None = None) -> Response:
        token = revoke_token(token=self.get_object(), actor=request_actor(request))
        return Response(self.get_serializer(token).data)


