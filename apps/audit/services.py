"""`record_event()`: the one way anything writes to the audit log. Call it inside the transaction of
the change it records, so the change and its audit row commit or roll back together."""

from __future__ import annotations

import datetime
import decimal
import uuid
from collections.abc import Iterable, Mapping
from typing import Any, Required, TypedDict, Unpack

from django.db import models

from apps.audit.models import AuditEvent
from apps.core.middleware import current_request

SECRET_FIELDS = frozenset({"password", "token_hash", "key", "secret"})


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID | decimal.Decimal):
        return str(value)
    if isinstance(value, models.Model):
        return str(getattr(value, "public_id", value.pk))
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def snapshot(instance: models.Model, exclude: Iterable[str] = ()) -> dict[str, Any]:
    """The concrete field values of `instance`, JSON-ready, without secrets; input to `diff()`."""
    skipped = SECRET_FIELDS | set(exclude) | {"id", "created_at", "updated_at"}
    data: dict[str, Any] = {}
    for field in instance._meta.concrete_fields:
        if field.name in skipped:
            continue
        data[field.name] = _jsonable(getattr(instance, field.attname))
    return data


def diff(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> dict[str, list[Any]]:
    """`{field: [before, after]}` for every field whose value differs."""
    before = before or {}
    after = after or {}
    return {
        key: [before.get(key), after.get(key)]
        for key in sorted(set(before) | set(after))
        if before.get(key) != after.get(key)
    }


def _actor_fields(actor: Any) -> dict[str, Any]:
    if actor is None:
        return {"actor_type": AuditEvent.ActorType.SYSTEM, "actor_repr": "system"}
    describe = getattr(actor, "audit_actor", None)
    if describe is not None:  # AgentToken (organizations) describes itself; audit must not import it
        return {"actor_type": AuditEvent.ActorType.TOKEN, "actor_token_id": actor.pk, "actor_repr": describe()}
    if getattr(actor, "is_authenticated", False):
        return {"actor_type": AuditEvent.ActorType.USER, "actor_user_id": actor.pk,
                "actor_repr": actor.get_username()[:200]}
    return {"actor_type": AuditEvent.ActorType.SYSTEM, "actor_repr": str(actor)[:200] or "anonymous"}


class AuditFields(TypedDict, total=False):
    """What one audit row is made of. `target` fills the object fields; `before`/`after` snapshots become
    the diff (or pass `changes` directly, e.g. for a login with no object)."""

    action: Required[str]
    actor: Required[Any]
    organization: Any
    target: models.Model | None
    object_type: str
    object_id: str
    object_repr: str
    before: Mapping[str, Any] | None
    after: Mapping[str, Any] | None
    changes: Mapping[str, Any] | None


def _event(fields: AuditFields) -> AuditEvent:
    target = fields.get("target")
    object_type = fields.get("object_type", "")
    object_id = fields.get("object_id", "")
    object_repr = fields.get("object_repr", "")
    if target is not None:
        object_type = object_type or target._meta.label_lower
        object_id = object_id or str(getattr(target, "public_id", target.pk))
        object_repr = object_repr or str(target)[:200]
    organization = fields.get("organization")
    changes = fields.get("changes")
    context = current_request.get()
    return AuditEvent(
        organization_id=organization if isinstance(organization, int) else getattr(organization, "pk", None),
        action=fields["action"],
        object_type=object_type,
        object_id=object_id,
        object_repr=object_repr[:200],
        changes=_jsonable(dict(changes)) if changes is not None else diff(fields.get("before"), fields.get("after")),
        request_id=context.request_id if context else "",
        ip=context.ip if context else None,
        user_agent=context.user_agent if context else "",
        **_actor_fields(fields["actor"]),
    )


def record_event(**fields: Unpack[AuditFields]) -> AuditEvent:
    """Append one audit row."""
    event = _event(fields)
    event.save(force_insert=True)
    return event


def record_events(events: Iterable[AuditFields]) -> list[AuditEvent]:
    """Append several audit rows in one INSERT: a push that registers a fleet of hosts writes one
    statement, not one per host."""
    return AuditEvent.objects.bulk_create([_event(fields) for fields in events])


def record_update(*, action: str, actor: Any, organization: Any, target: models.Model,
                  before: Mapping[str, Any], after: Mapping[str, Any]) -> AuditEvent | None:
    """The audit row of an edit, written only when the snapshots differ: saving a form unchanged is not an
    event (every update service snapshots before and after and calls this)."""
    if before == after:
        return None
    return record_event(action=action, actor=actor, organization=organization, target=target, before=before,
                        after=after)
