"""Admin forms that edit a list of children (a schedule's layers, a policy's steps) as one JSON field,
validated by the API's own serializer so the admin and the API accept exactly the same input."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django import forms
from rest_framework import serializers


def clean_json_children(form: forms.ModelForm, data: dict[str, Any], *, field: str,
                        serializer_class: type[serializers.Serializer], convert: Callable[[Any], Any],
                        into: str) -> dict[str, Any]:
    """Parse ``data[field]`` as a JSON list, validate it with ``serializer_class(many=True)`` in the form's
    organization and put ``convert(validated)`` at ``data[into]``; errors go on ``field``."""
    organization = data.get("organization") or getattr(form.instance, "organization", None)
    try:
        raw = json.loads(data.get(field) or "[]")
    except json.JSONDecodeError as exc:
        form.add_error(field, f"Not valid JSON: {exc}")
        return data
    if organization is None:
        return data
    serializer = serializer_class(data=raw, many=True, context={"organization": organization})
    if not serializer.is_valid():
        form.add_error(field, json.dumps(serializer.errors))
        return data
    data[into] = convert(serializer.validated_data)
    return data
