"""Resolving "which organization, with which role" for API requests and pages.

API: a token carries its organization and its scope; what the scope allows is decided per action by
`apps.core.api.permissions.ActionPermission` (a token has no role). A session user names the
organization with the `X-Organization` header or `?org=` (slug); a user with exactly one membership may
omit it. Pages: the `<org_slug>` in the URL, resolved by OrganizationMiddleware."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse
from rest_framework import exceptions
from rest_framework.request import Request

from apps.organizations.models import AgentToken, Membership

ORG_HEADER = "X-Organization"


def resolve_api_access(request: Request) -> None:
    """Set request.organization, request.role (sessions) and request.token_scope (tokens), or raise
    NotFound for an organization the caller does not belong to (never revealing whether it exists)."""
    token = request.auth if isinstance(request.auth, AgentToken) else None
    if token is not None:
        request.organization = token.organization
        request.role = None
        request.token = token
        request.token_scope = token.scope
        return
    user = request.user
    slug = request.headers.get(ORG_HEADER) or request.query_params.get("org")
    memberships = Membership.objects.select_related("organization").filter(
        user=user, organization__is_active=True
    )
    if slug:
        membership = memberships.filter(organization__slug=slug).first()
    else:
        found = list(memberships[:2])
        if len(found) > 1:
            raise exceptions.ValidationError(
                {"organization": f"You belong to several organizations: name one with the {ORG_HEADER} "
                                 "header or the org query parameter."}
            )
        membership = found[0] if found else None
    if membership is None:
        raise exceptions.NotFound("No such organization.")
    request.organization = membership.organization
    request.role = membership.role
    request.membership = membership
    request.token = None
    request.token_scope = None


class OrganizationMiddleware:
    """For pages under /<org_slug>/: set request.organization and request.membership once.

    A non-member (or an unknown slug) gets the same 404 from `apps.core.access`, so the URL does not
    reveal which organizations exist."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func: Any, view_args: Any, view_kwargs: dict) -> None:
        request.organization = None  # type: ignore[attr-defined]
        request.membership = None  # type: ignore[attr-defined]
        slug = view_kwargs.get("org_slug")
        if not slug or not request.user.is_authenticated:
            return
        membership = (
            Membership.objects.select_related("organization")
            .filter(user=request.user, organization__slug=slug, organization__is_active=True)
            .first()
        )
        if membership is not None:
            request.organization = membership.organization  # type: ignore[attr-defined]
            request.membership = membership  # type: ignore[attr-defined]
