"""What the alerting pages share: the role each action needs (the same as the REST API's), the
template context that decides which buttons show, and turning a service's ValidationError into form
errors on the fields it names."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.http import HttpRequest

from apps.core.access import require_role
from apps.core.roles import Role, role_at_least

#: On-call work: acknowledge, resolve, silence, plan and end maintenance (API: editors).
ACT_ROLE = Role.EDITOR
#: Create and change rules and channels, rotate a channel's secret (API: editors, config tokens).
CONFIGURE_ROLE = Role.EDITOR
#: Delete rules and channels (API: admins).
DELETE_ROLE = Role.ADMIN


def role_of(request: HttpRequest) -> str | None:
    membership = getattr(request, "membership", None)
    return membership.role if membership is not None else None


def permissions(request: HttpRequest) -> dict[str, bool]:
    """Template flags: a page shows only the buttons the member's role may use."""
    role = role_of(request)
    return {
        "can_act": role_at_least(role, ACT_ROLE),
        "can_configure": role_at_least(role, CONFIGURE_ROLE),
        "can_delete": role_at_least(role, DELETE_ROLE),
    }


def page_context(request: HttpRequest, **extra: Any) -> dict[str, Any]:
    """The context every alerting page starts from."""
    return {"organization": request.organization, **permissions(request), **extra}  # type: ignore[attr-defined]


def member(request: HttpRequest) -> None:
    """Viewers and up see every alerting page; non-members get the same 404 as everywhere else."""
    require_role(request, Role.VIEWER)


def add_service_errors(form: forms.Form, exc: ValidationError, names: Mapping[str, str] | None = None) -> None:
    """Put a service's errors (keyed by model field names) on the form fields that carry them; errors of
    fields the form does not show become form-wide errors that still name the field."""
    names = names or {}
    if not hasattr(exc, "error_dict"):
        for message in exc.messages:
            form.add_error(None, message)
        return
    for field, messages in exc.message_dict.items():
        target = names.get(field, field)
        for message in messages:
            if target in form.fields and target not in ("__all__",):
                form.add_error(target, message)
            else:
                form.add_error(None, f"{field}: {message}" if field != "__all__" else message)
