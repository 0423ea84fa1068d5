"""Serializer helpers for organization-scoped writes (OnCall `CurrentOrganizationDefault`)."""

from __future__ import annotations

import uuid
from typing import Any


class CurrentOrganizationDefault:
    """HiddenField default: the organization the request is scoped to, never one named by the client."""

    requires_context = True

    def __call__(self, serializer_field: Any) -> Any:
        return serializer_field.context["request"].organization

    def __repr__(self) -> str:
        return "CurrentOrganizationDefault()"


def is_uuid(value: str) -> bool:
    """Whether ``value`` parses as a UUID (public ids): a malformed id is "not found", never a 500."""
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True
