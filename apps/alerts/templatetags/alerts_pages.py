"""Template helpers of the alerting pages: relative times ("3 min ago", the absolute time in the
title), label sets and silence matchers as people write them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from django import template
from django.utils import timezone
from django.utils.html import format_html

register = template.Library()


def relative(moment: dt.datetime, now: dt.datetime) -> str:
    """On-call staff scan for "12 s ago", not for a timestamp."""
    seconds = (now - moment).total_seconds()
    future = seconds < 0
    seconds = abs(seconds)
    if seconds < 60:
        text = f"{int(seconds)} s"
    elif seconds < 3600:
        text = f"{int(seconds // 60)} min"
    elif seconds < 86400:
        hours, minutes = divmod(int(seconds // 60), 60)
        text = f"{hours} h {minutes} min" if minutes and hours < 6 else f"{hours} h"
    else:
        text = f"{int(seconds // 86400)} d"
    return f"in {text}" if future else f"{text} ago"


@register.simple_tag
def ago(moment: dt.datetime | None, empty: str = "—") -> str:
    """``<time>`` with the relative time as text and the absolute UTC time in its title; static/js/alerts.js
    keeps the text current from ``datetime``."""
    if moment is None:
        return empty
    iso = moment.astimezone(dt.UTC).isoformat(timespec="seconds")
    absolute = moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return format_html('<time datetime="{}" title="{}" data-ago>{}</time>', iso, absolute,
                       relative(moment, timezone.now()))


@register.filter
def labels_text(labels: Mapping[str, Any] | None, skip: str = "") -> str:
    """``k="v", …`` sorted; ``skip`` is a comma-separated list of names left out (shown elsewhere)."""
    left_out = {name for name in skip.split(",") if name}
    return ", ".join(f'{key}="{value}"' for key, value in sorted((labels or {}).items()) if key not in left_out)


@register.filter
def matchers_text(matchers: Iterable[Mapping[str, Any]] | None) -> str:
    return ", ".join(f'{m.get("name")}{m.get("op")}"{m.get("value")}"' for m in matchers or ())


@register.filter
def seconds(value: int | float | None) -> str:
    """A duration in the largest whole unit that fits: 300 -> "5 min", 7200 -> "2 h"."""
    if value is None:
        return "—"
    value = int(value)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if value >= size and value % size == 0:
            return f"{value // size} {unit}"
    return f"{value} s"


@register.filter
def number(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.4g}" if abs(value) < 1e6 else f"{value:.3e}"
