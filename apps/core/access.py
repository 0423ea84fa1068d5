"""Object access for pages: one function that scopes by organization and checks the role.

Another organization's object and a missing membership both give 404, so a URL never reveals whether
an object exists elsewhere (Healthchecks `_get_check_for_user`, Zulip `access_stream_by_id`)."""

from __future__ import annotations

from typing import Any, TypeVar
from uuid import UUID

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models
from django.http import Http404, HttpRequest

from apps.core.roles import Role, role_at_least

M = TypeVar("M", bound=models.Model)


def require_role(request: HttpRequest, minimum: str) -> None:
    """403 unless the member's role in request.organization is at least `minimum`; 404 for non-members."""
    membership = getattr(request, "membership", None)
    if getattr(request, "organization", None) is None or membership is None:
        raise Http404("No such organization")
    if not role_at_least(membership.role, minimum):
        raise PermissionDenied(f"This needs the {minimum} role")


def get_for_member(request: HttpRequest, model: type[M], public_id: UUID | str, *, write: bool = False) -> M:
    """Return `model` with `public_id` in the member's organization (404 otherwise; 403 for a read-only
    role asking to write)."""
    require_role(request, Role.EDITOR if write else Role.VIEWER)
    manager: Any = model._default_manager
    try:
        return manager.for_org(request.organization).get(public_id=public_id)  # type: ignore[attr-defined]
    # ValidationError: the id is not a UUID at all (a form field such as tokens' ?revoke= carries it).
    except (model.DoesNotExist, ValueError, ValidationError) as exc:  # type: ignore[attr-defined]
        raise Http404(f"No such {model._meta.verbose_name}") from exc
