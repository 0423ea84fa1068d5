"""Serializer helpers for organization-scoped writes (OnCall `CurrentOrganizationDefault`)."""

from __future__ import annotations

from typing import Any


class CurrentOrganizationDefault:
    """HiddenField default: the organization the request is scoped to, never one named by the client."""

    requires_context = True

    def __call__(self, serializer_field: Any) -> Any:
        return serializer_field.context["request"].organization

    def __repr__(self) -> str:
        return "CurrentOrganizationDefault()"
