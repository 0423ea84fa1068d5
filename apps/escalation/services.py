"""Write use-cases for on-call schedules, overrides and calendar feeds. Each one validates, writes and
records its audit event in one transaction (Zulip `do_*`); the API, the admin and scripts all come
through here, so a schedule is never half-replaced and never changed unaudited."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.audit.services import record_event, record_update, snapshot
from apps.escalation.models import (
    CalendarFeed,
    OnCallSchedule,
    ScheduleLayer,
    ScheduleLayerMember,
    ScheduleOverride,
)
from apps.escalation.validation import format_hhmm
from apps.organizations.models import Membership, Organization


@dataclass(frozen=True)
class LayerData:
    """A layer as the API and the admin describe it; ``members`` are users in rotation order.
    ``priority`` None means the layer's position in the list (later layers win)."""

    rotation: str
    start_date: dt.date
    handoff_time: dt.time
    members: Sequence[Any]
    priority: int | None = None
    name: str = ""
    shift_seconds: int | None = None
    restrictions: list[dict[str, Any]] = field(default_factory=list)


def layer_snapshot(layer: ScheduleLayer) -> dict[str, Any]:
    """A layer as the audit log and the API show it."""
    return {
        "id": str(layer.public_id), "name": layer.name, "priority": layer.priority, "rotation": layer.rotation,
        "shift_seconds": layer.shift_seconds, "start_date": layer.start_date.isoformat(),
        "handoff_time": format_hhmm(layer.handoff_time), "restrictions": layer.restrictions,
        # .all() (Meta ordering: position) so that a prefetched list is used when there is one
        "members": [m.user.get_username() for m in layer.memberships.all()],
    }


def schedule_snapshot(schedule: OnCallSchedule) -> dict[str, Any]:
    """The schedule's fields and its layers, for before/after diffs in the audit log."""
    data = snapshot(schedule, exclude=["last_on_call", "last_on_call_checked_at", "shift_change_channel"])
    data["shift_change_channel"] = (str(schedule.shift_change_channel.public_id)
                                    if schedule.shift_change_channel else None)
    return {**data, "layers": [layer_snapshot(layer) for layer in schedule.layers.all()]}


#: ``shift_change_channel`` not given (keep it), as opposed to None (clear it).
KEEP: Any = object()


def _set_shift_notices(schedule: OnCallSchedule, notify: bool | None, channel: Any) -> None:
    """Shift-change notices go to a user-configured channel of the schedule's organization; turning them
    on needs one."""
    if notify is not None:
        if notify and not schedule.notify_shift_changes:
            schedule.last_on_call = None  # a stale state from before would fake a handoff at the first check
        schedule.notify_shift_changes = notify
    if channel is not KEEP:
        if channel is not None and (channel.organization_id != schedule.organization_id or channel.managed_by):
            raise ValidationError({"shift_change_channel": "No such channel in this organization."})
        schedule.shift_change_channel = channel
    if schedule.notify_shift_changes and schedule.shift_change_channel is None:
        raise ValidationError({"shift_change_channel": "Shift-change notices need a channel."})


def check_members(organization: Organization, users: Sequence[Any], field_name: str = "members") -> None:
    """ValidationError naming every user who is not a member of ``organization``."""
    member_ids = set(Membership.objects.filter(organization=organization, user__in=[u.pk for u in users])
                     .values_list("user_id", flat=True))
    outsiders = sorted({u.get_username() for u in users if u.pk not in member_ids})
    if outsiders:
        raise ValidationError({field_name: f"Not members of this organization: {', '.join(outsiders)}."})


def _save_schedule(schedule: OnCallSchedule) -> None:
    """Save, turning a concurrent duplicate name (full_clean passed for both) into a 400, not a 500."""
    try:
        with transaction.atomic():
            schedule.save()
    except IntegrityError as exc:
        raise ValidationError({"name": "This organization already has a schedule with this name."}) from exc


def _write_layers(schedule: OnCallSchedule, layers: Sequence[LayerData]) -> None:
    """Replace the schedule's layers (the caller holds the schedule's row lock)."""
    schedule.layers.all().delete()
    priorities = [data.priority if data.priority is not None else index for index, data in enumerate(layers)]
    if len(set(priorities)) != len(priorities):
        raise ValidationError({"layers": "Two layers of a schedule cannot share a priority."})
    for index, (data, priority) in enumerate(zip(layers, priorities, strict=True)):
        if not data.members:
            raise ValidationError({"layers": f"Layer {index} needs at least one member."})
        check_members(schedule.organization, data.members)
        layer = ScheduleLayer(schedule=schedule, name=data.name, priority=priority, rotation=data.rotation,
                              shift_seconds=data.shift_seconds, start_date=data.start_date,
                              handoff_time=data.handoff_time, restrictions=data.restrictions)
        try:
            layer.full_clean(exclude=["schedule"])
        except ValidationError as exc:
            raise ValidationError({"layers": [f"Layer {index}: {m}" for m in exc.messages]}) from exc
        layer.save()
        ScheduleLayerMember.objects.bulk_create(
            ScheduleLayerMember(layer=layer, user=user, position=position)
            for position, user in enumerate(data.members))


@transaction.atomic
def create_schedule(*, organization: Organization, name: str, time_zone: str, actor: Any,
                    layers: Sequence[LayerData] = (), description: str = "", notify_shift_changes: bool = False,
                    shift_change_channel: Any = None) -> OnCallSchedule:
    """Add a schedule with its layers (and, optionally, shift-change notices to a channel)."""
    schedule = OnCallSchedule(organization=organization, name=name.strip(), time_zone=time_zone,
                              description=description)
    _set_shift_notices(schedule, notify_shift_changes, shift_change_channel)
    schedule.full_clean()
    _save_schedule(schedule)
    _write_layers(schedule, layers)
    record_event(action="schedule.created", actor=actor, organization=organization, target=schedule,
                 after=schedule_snapshot(schedule))
    return schedule


@transaction.atomic
def update_schedule(*, schedule: OnCallSchedule, actor: Any, name: str | None = None,
                    time_zone: str | None = None, description: str | None = None,
                    layers: Sequence[LayerData] | None = None, notify_shift_changes: bool | None = None,
                    shift_change_channel: Any = KEEP) -> OnCallSchedule:
    """Change a schedule's fields; ``layers``, when given, replace all of its layers at once."""
    # The row lock serializes two edits of one schedule, so layers are never interleaved.
    schedule = OnCallSchedule.objects.select_for_update().get(pk=schedule.pk)
    before = schedule_snapshot(schedule)
    for attr, value in (("name", name.strip() if name is not None else None), ("time_zone", time_zone),
                        ("description", description)):
        if value is not None:
            setattr(schedule, attr, value)
    _set_shift_notices(schedule, notify_shift_changes, shift_change_channel)
    schedule.full_clean()
    _save_schedule(schedule)
    if layers is not None:
        _write_layers(schedule, layers)
    after = schedule_snapshot(schedule)
    record_update(action="schedule.updated", actor=actor, organization=schedule.organization_id,
                  target=schedule, before=before, after=after)
    return schedule


@transaction.atomic
def delete_schedule(*, schedule: OnCallSchedule, actor: Any) -> None:
    """Remove a schedule with its layers and overrides."""
    record_event(action="schedule.deleted", actor=actor, organization=schedule.organization_id, target=schedule,
                 before=schedule_snapshot(schedule), after=None)
    schedule.delete()


@transaction.atomic
def create_override(*, schedule: OnCallSchedule, user: Any, start: dt.datetime, end: dt.datetime,
                    actor: Any) -> ScheduleOverride:
    """``user`` covers [start, end) on ``schedule``."""
    check_members(schedule.organization, [user], field_name="user")
    if start.tzinfo is None or end.tzinfo is None:
        raise ValidationError({"start": "Times need a UTC offset (RFC 3339)."})
    if end <= start:
        raise ValidationError({"end": "An override must end after it starts."})
    override = ScheduleOverride(organization_id=schedule.organization_id, schedule=schedule, user=user,
                                start=start, end=end,
                                created_by=actor if getattr(actor, "is_authenticated", False) else None)
    override.full_clean()
    override.save()
    record_event(action="schedule.override_created", actor=actor, organization=schedule.organization_id,
                 target=override, after={**snapshot(override), "user": user.get_username()})
    return override


@transaction.atomic
def update_override(*, override: ScheduleOverride, actor: Any, user: Any = None, start: dt.datetime | None = None,
                    end: dt.datetime | None = None) -> ScheduleOverride:
    """Change who covers an override or when; the result is checked like a new override."""
    override = ScheduleOverride.objects.select_for_update().select_related("user").get(pk=override.pk)
    before = {**snapshot(override), "user": override.user.get_username()}
    if user is not None:
        check_members(override.schedule.organization, [user], field_name="user")
        override.user = user
    override.start = start if start is not None else override.start
    override.end = end if end is not None else override.end
    if override.start.tzinfo is None or override.end.tzinfo is None:
        raise ValidationError({"start": "Times need a UTC offset (RFC 3339)."})
    if override.end <= override.start:
        raise ValidationError({"end": "An override must end after it starts."})
    override.full_clean()
    override.save()
    after = {**snapshot(override), "user": override.user.get_username()}
    record_update(action="schedule.override_updated", actor=actor, organization=override.organization_id,
                  target=override, before=before, after=after)
    return override


@transaction.atomic
def delete_override(*, override: ScheduleOverride, actor: Any) -> None:
    """Remove an override; the layers decide again for its range."""
    record_event(action="schedule.override_deleted", actor=actor, organization=override.organization_id,
                 target=override, before={**snapshot(override), "user": override.user.get_username()}, after=None)
    override.delete()


@transaction.atomic
def create_calendar_feed(*, organization: Organization, user: Any, actor: Any) -> CalendarFeed:
    """A new feed URL for ``user``; any feed they had in this organization is revoked (resetting the
    link is how a leaked URL is replaced)."""
    # Locking the membership row serializes two requests for a new link (the unique active feed).
    if not Membership.objects.select_for_update().filter(organization=organization, user=user).values_list(
            "pk", flat=True):
        raise ValidationError({"user": f"Not members of this organization: {user.get_username()}."})
    for feed in CalendarFeed.objects.select_for_update().filter(organization=organization, user=user,
                                                                revoked_at__isnull=True):
        revoke_calendar_feed(feed=feed, actor=actor)
    feed = CalendarFeed.objects.create(organization=organization, user=user)
    record_event(action="schedule.calendar_feed_created", actor=actor, organization=organization, target=feed,
                 after={"user": user.get_username()})
    return feed


@transaction.atomic
def revoke_calendar_feed(*, feed: CalendarFeed, actor: Any) -> CalendarFeed:
    """Stop a feed URL from working (compare-and-set: revoking twice records one event)."""
    now = timezone.now()
    if CalendarFeed.objects.filter(pk=feed.pk, revoked_at__isnull=True).update(revoked_at=now) == 1:
        feed.revoked_at = now
        record_event(action="schedule.calendar_feed_revoked", actor=actor, organization=feed.organization_id,
                     target=feed, changes={"revoked_at": [None, now]})
    else:
        feed.refresh_from_db(fields=["revoked_at"])
    return feed
