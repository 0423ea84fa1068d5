"""Events: things that happened to a host or the organization (node up/down, alert transitions,
deploys, custom), posted by automation to ``/api/v1/events`` or recorded by code through
``services.record_host_event``. One JSON document -> one ``logs_event`` row."""

from __future__ import annotations

from typing import Any

from django.db import models

from apps.logs import levels
from apps.logs.documents import DocumentError, Window, clean, context_json, parse_time


class EventKind(models.TextChoices):
    NODE_UP = "node_up", "Node up"
    NODE_DOWN = "node_down", "Node down"
    ALERT_FIRING = "alert_firing", "Alert firing"
    ALERT_ACKNOWLEDGED = "alert_acknowledged", "Alert acknowledged"
    ALERT_RESOLVED = "alert_resolved", "Alert resolved"
    DEPLOY = "deploy", "Deploy"
    CUSTOM = "custom", "Custom"


_TEXT = {"host": 200, "title": 500, "message": 10_000, "source": 200}


def to_row(doc: Any, window: Window) -> tuple[Any, ...]:
    """``{"kind", "title", "host"?, "message"?, "level"?, "source"?, "time"?, "context"?}`` ->
    ``storage.EVENT_COLUMNS`` values. Raises DocumentError naming the field."""
    if not isinstance(doc, dict):
        raise DocumentError(f"an event must be a JSON object, not {type(doc).__name__}")
    kind = doc.get("kind", EventKind.CUSTOM)
    if kind not in EventKind.values:
        raise DocumentError(f"kind {str(kind)[:40]!r} is not one of {', '.join(EventKind.values)}")
    when = window.now if doc.get("time") in (None, "") else parse_time(doc["time"])
    if not window.earliest <= when <= window.latest:
        raise DocumentError(f"time {when.isoformat()} is outside the accepted range")
    level = levels.normalize(doc.get("level"))
    if level is None:
        raise DocumentError(f"level {str(doc.get('level'))[:40]!r} is not a known level")
    texts: dict[str, str] = {}
    for name, limit in _TEXT.items():
        value = doc.get(name)
        if value is not None and not isinstance(value, str):
            raise DocumentError(f"{name} must be a string")
        texts[name] = clean(value or "")
        if len(texts[name]) > limit:
            raise DocumentError(f"{name} is longer than {limit} characters")
    if not texts["title"]:
        raise DocumentError("title is required")
    context = doc.get("context") or {}
    if not isinstance(context, dict):
        raise DocumentError("context must be a JSON object")
    return (when, None, None, texts["host"], kind, level, texts["title"], texts["message"], texts["source"],
            context_json(context))
