"""Query parameters of the API: a value the API cannot read is a 400 naming the parameter, never silently
ignored (``?enabled=yes`` used to list every rule, disabled ones too, as if the filter were absent)."""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import ValidationError

from apps.core.params import echo

TRUE, FALSE = ("true", "1"), ("false", "0")


def bool_param(params: Any, name: str) -> bool | None:
    """``?name=true|false|1|0`` (any case) as a bool; None when absent or empty."""
    value = params.get(name)
    if value is None or value == "":
        return None
    if value.lower() in TRUE:
        return True
    if value.lower() in FALSE:
        return False
    raise ValidationError({name: [f"{name} must be true or false (or 1 or 0), not {echo(value)}."]})
