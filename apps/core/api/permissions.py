"""Per-action role checks for organization-scoped endpoints (OnCall `rbac_permissions`, Sentry `scope_map`)."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from apps.core.roles import role_at_least


class RolePermission(BasePermission):
    """Grant an action when the caller's role in request.organization reaches `view.required_roles[action]`.

    An action missing from the map is refused: a new action must be given a role on purpose."""

    message = "Your role in this organization does not allow this action."

    def has_permission(self, request: Request, view: Any) -> bool:
        action = getattr(view, "action", None)
        if action is None and hasattr(view, "action_map"):
            # A method the viewset does not route: let DRF answer 405 rather than a misleading 403.
            return True
        action = action or request.method.lower()
        required = getattr(view, "required_roles", {}).get(action)
        if required is None:
            return False
        return role_at_least(getattr(request, "role", None), required)
