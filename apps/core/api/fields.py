"""Serializer helpers for organization-scoped writes (OnCall `CurrentOrganizationDefault`) and the API's
JSONField."""

from __future__ import annotations

import uuid
from typing import Any

from rest_framework import serializers


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


class JSONField(serializers.JSONField):
    """DRF's JSONField, refusing a JSON ``null`` unless ``allow_null``. DRF checks for null before it parses a
    form field's JSON text, so ``hardware_info=null`` in a form-encoded body became None after the check and
    reached a NOT NULL column (a 500). CoreConfig.ready() maps every model JSONField to this one."""

    def to_internal_value(self, data: Any) -> Any:
        value = super().to_internal_value(data)
        if value is None and not self.allow_null:
            self.fail("null")
        return value
