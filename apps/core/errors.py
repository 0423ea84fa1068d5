"""Service errors shown outside the API (admin messages, command errors): one line, naming the field."""

from __future__ import annotations

from django.core.exceptions import ValidationError


def error_sentence(exc: Exception) -> str:
    """A Django ValidationError (field errors included) or any other exception as one readable line."""
    if isinstance(exc, ValidationError) and hasattr(exc, "error_dict"):
        return " ".join(f"{field}: {' '.join(messages)}" for field, messages in exc.message_dict.items())
    if isinstance(exc, ValidationError):
        return " ".join(exc.messages)
    return str(exc)
