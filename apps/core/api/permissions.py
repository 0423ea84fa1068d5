"""The one access check of organization-scoped endpoints (OnCall `rbac_permissions`, Sentry `scope_map`).

Each view declares, per action, what a caller needs:

* ``required_roles`` -- the minimum role of a signed-in member (session);
* ``required_scopes`` -- the scope an agent token needs (`apps.core.scopes`).

Roles never apply to tokens and scopes never to sessions, so a token's reach is exactly its view's
``required_scopes``. An action missing from a map is refused: a new endpoint or action is closed until it
is given a role and, if tokens may use it, a scope on purpose."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from apps.core.roles import role_at_least
from apps.core.scopes import scope_allows

NO_TOKENS = "Agent tokens cannot use this endpoint; sign in as a member of the organization."


def _action(request: Request, view: Any) -> str | None:
    """The viewset action, or the lower-case method for a plain APIView; None for a method the viewset
    does not route or a plain view does not handle (DRF then answers 405 rather than a misleading 403)."""
    method = request.method.lower()
    if method not in view.http_method_names or not hasattr(view, method):
        return None
    action = getattr(view, "action", None)
    if action is None and hasattr(view, "action_map"):
        return None
    return action or method


class ActionPermission(BasePermission):
    """Grant an action to a member whose role reaches ``view.required_roles[action]``, or to a token whose
    scope grants ``view.required_scopes[action]``. `request.token_scope` (set by the organization resolver)
    tells the two apart: a string for token requests, None for sessions."""

    message: Any = "Your role in this organization does not allow this action."

    def has_permission(self, request: Request, view: Any) -> bool:
        action = _action(request, view)
        if action is None:
            return True
        token_scope = getattr(request, "token_scope", None)
        if token_scope is not None:
            return self._token_may(token_scope, getattr(view, "required_scopes", {}).get(action))
        required = getattr(view, "required_roles", {}).get(action)
        if required is None:
            return False
        return role_at_least(getattr(request, "role", None), required)

    def _token_may(self, token_scope: str, required: str | None) -> bool:
        if required is None:
            self.message = {"detail": NO_TOKENS, "token_scope": token_scope}
            return False
        if not scope_allows(token_scope, required):
            self.message = {"detail": f"This needs a token with the {required} scope; this token has the "
                                      f"{token_scope} scope.", "required_scope": required, "token_scope": token_scope}
            return False
        return True


#: The former name, kept so code written against it keeps importing.
RolePermission = ActionPermission
