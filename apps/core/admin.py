"""Admin plumbing shared by apps: no domain models are registered here."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest


class ReadOnlyAdminMixin:
    """For rows that only the product writes (audit events, sessions, rollup state, series): the admin
    shows them but offers no add or change form. `allow_delete` keeps the delete action where removing
    a row by hand is meaningful."""

    allow_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.allow_delete and super().has_delete_permission(request, obj)  # type: ignore[misc]
