"""Template helpers of the on-call page."""

from __future__ import annotations

from django import template

from apps.escalation.calendar import source_label

register = template.Library()


@register.filter
def shift_source(source: str | None) -> str:
    """"override" or "layer 2" for a shift's source ("" when nobody is on call)."""
    return source_label(source)
