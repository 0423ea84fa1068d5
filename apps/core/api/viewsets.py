"""The base for every organization-scoped API endpoint. Scoping happens here once, so no subclass can
forget it (NetBox `BaseViewSet.initial`): the caller's organization is resolved before permissions run,
and every queryset is filtered by it. Objects of other organizations are simply not found (404)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string
from rest_framework import mixins, viewsets
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request

from apps.core.api.permissions import ActionPermission
from apps.core.roles import Role
from apps.core.scopes import TokenScope

DEFAULT_REQUIRED_ROLES: dict[str, str] = {
    "list": Role.VIEWER,
    "retrieve": Role.VIEWER,
    "create": Role.EDITOR,
    "update": Role.EDITOR,
    "partial_update": Role.EDITOR,
    "destroy": Role.ADMIN,
}

#: Token scopes for configuration endpoints (hosts, services, dependencies; alert rules, channels,
#: silences and schedules as they arrive): read tokens read, config tokens also change. Ingest tokens
#: get nothing here.
CONFIG_REQUIRED_SCOPES: dict[str, str] = {
    "list": TokenScope.READ,
    "retrieve": TokenScope.READ,
    "create": TokenScope.CONFIG,
    "update": TokenScope.CONFIG,
    "partial_update": TokenScope.CONFIG,
    "destroy": TokenScope.CONFIG,
}

#: Token scopes for read-only views (plain APIView GET handlers and read-only viewsets).
READ_REQUIRED_SCOPES: dict[str, str] = {
    "get": TokenScope.READ,
    "head": TokenScope.READ,
    "options": TokenScope.READ,
    "list": TokenScope.READ,
    "retrieve": TokenScope.READ,
}


def resolve_api_access(request: Request) -> None:
    """Set request.organization, request.role and request.token_scope through the resolver the
    organizations app provides (wired by settings so core never imports a domain app)."""
    resolver = import_string(settings.FIBERSTACK_API_ACCESS_RESOLVER)
    resolver(request)


class OrgScopedMixin:
    """Organization scoping plus the per-action access maps `ActionPermission` reads. `required_scopes`
    defaults to empty: no agent token reaches a new endpoint until its view names the scopes it accepts
    (usually CONFIG_REQUIRED_SCOPES or READ_REQUIRED_SCOPES)."""

    lookup_field = "public_id"
    permission_classes = [IsAuthenticated, ActionPermission]
    required_roles: dict[str, str] = DEFAULT_REQUIRED_ROLES
    required_scopes: dict[str, str] = {}

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        # DRF negotiates first and authenticates after; authenticating first (the organization must be
        # known before the permission checks) must not skip it: an error while looking the token up (the
        # database unreachable) is handled by DRF's error path, which with DEBUG on reads the renderer.
        self.format_kwarg = self.get_format_suffix(**kwargs)  # type: ignore[attr-defined]
        negotiated = self.perform_content_negotiation(request)  # type: ignore[attr-defined]
        request.accepted_renderer, request.accepted_media_type = negotiated
        self.perform_authentication(request)  # type: ignore[attr-defined]
        if (request.user and request.user.is_authenticated) or request.auth is not None:
            resolve_api_access(request)
        super().initial(request, *args, **kwargs)  # type: ignore[misc]

    def get_queryset(self) -> Any:
        return super().get_queryset().for_org(self.request.organization)  # type: ignore[misc, attr-defined]


class OrgScopedViewSet(OrgScopedMixin, viewsets.ModelViewSet):
    """Full CRUD scoped to the caller's organization."""


class OrgScopedReadOnlyViewSet(OrgScopedMixin, viewsets.ReadOnlyModelViewSet):
    """List + retrieve scoped to the caller's organization."""


class OrgScopedCreateListViewSet(OrgScopedMixin, mixins.CreateModelMixin, mixins.ListModelMixin,
                                 mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Create, list and retrieve; no update or delete (e.g. tokens are revoked, not edited)."""
