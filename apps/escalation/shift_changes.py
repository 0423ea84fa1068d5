"""Shift-change notices: "alice is now on call for Primary (until …)" posted to a schedule's channel,
exactly once per handoff.

A beat task asks every opted-in schedule who is on call now and compares with who was on call at its last
check (``OnCallSchedule.last_on_call``). The stored state is advanced by compare-and-set on its old value,
in the transaction that writes the notice to the outbox, so two overlapping checks (two beat workers, a
slow tick) send one notice: the loser's update matches no row and it writes nothing."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.alerts.services.outbox import create_notices
from apps.audit.services import record_event
from apps.escalation import oncall
from apps.escalation.models import OnCallSchedule

#: How far ahead "until …" looks for the end of the new shift.
HORIZON = dt.timedelta(days=35)


def _until(schedule: OnCallSchedule, user_ids: list[int], now: dt.datetime) -> dt.datetime | None:
    """When the people on call now stop being on call (None: not within the horizon)."""
    spec = schedule.to_spec(now, now + HORIZON)
    for shift in oncall.final_schedule(spec, now, now + HORIZON):
        if shift.start <= now < shift.end and getattr(shift.user, "pk", None) in user_ids:
            return shift.end if shift.end < now + HORIZON else None
    return None


def notice_body(schedule: OnCallSchedule, users: list[Any], until: dt.datetime | None,
                now: dt.datetime) -> dict[str, Any]:
    """An Alertmanager-v4-shaped body (what every transport renders) saying who took over."""
    names = ", ".join(u.get_username() for u in users) or "Nobody"
    verb = "is" if len(users) <= 1 else "are"
    text = f"{names} {verb} now on call for {schedule.name}"
    if until is not None:
        local = until.astimezone(oncall.zone(schedule.time_zone))
        text += f" (until {local:%Y-%m-%d %H:%M} {schedule.time_zone})"
    labels = {"alertname": f"On call: {schedule.name}"}
    annotations = {"summary": text, "schedule": str(schedule.public_id),
                   "on_call": ",".join(u.get_username() for u in users)}
    return {"version": "4", "status": "notice", "groupKey": f"shift-change:{schedule.public_id}",
            "groupLabels": labels, "commonLabels": labels, "commonAnnotations": annotations, "externalURL": "",
            "truncatedAlerts": 0,
            "alerts": [{"status": "notice", "labels": labels, "annotations": annotations, "generatorURL": "",
                        "startsAt": now.isoformat(), "endsAt": until.isoformat() if until else
                        "0001-01-01T00:00:00Z", "fingerprint": f"{schedule.public_id}:{now.isoformat()}"}]}


@transaction.atomic
def check_schedule(*, schedule_id: int, now: dt.datetime | None = None) -> str:
    """Compare who is on call now with the stored last state; on a handoff, advance the state (compare-and-
    set) and queue one notice, audited. The first check only records the state (no handoff seen yet)."""
    now = now or timezone.now()
    schedule = OnCallSchedule.objects.select_related("shift_change_channel").filter(pk=schedule_id).first()
    if schedule is None or not schedule.notify_shift_changes:
        return f"schedule {schedule_id}: not notifying"
    users = schedule.who_is_on_call(now)
    current = sorted(u.pk for u in users)
    previous = schedule.last_on_call
    if previous == current:
        return f"schedule {schedule_id}: no handoff"
    claim = OnCallSchedule.objects.filter(pk=schedule.pk)
    claim = claim.filter(last_on_call__isnull=True) if previous is None else claim.filter(last_on_call=previous)
    if claim.update(last_on_call=current, last_on_call_checked_at=now) != 1:
        return f"schedule {schedule_id}: another check took this handoff"
    channel = schedule.shift_change_channel
    if previous is None or channel is None or not channel.enabled:
        return f"schedule {schedule_id}: on call recorded, no notice"
    until = _until(schedule, current, now)
    [row] = create_notices(organization_id=schedule.organization_id, body=notice_body(schedule, users, until, now),
                           channels=[channel], at=now)
    record_event(action="schedule.shift_changed", actor=None, organization=schedule.organization_id,
                 target=schedule, changes={"on_call": [previous, current], "notification": [None, row.pk]})
    return f"schedule {schedule_id}: handoff noticed ({row.pk})"


def check_shift_changes(*, now: dt.datetime | None = None) -> int:
    """Check every opted-in schedule; returns how many handoffs were noticed."""
    ids = OnCallSchedule.objects.filter(notify_shift_changes=True).values_list("pk", flat=True).order_by("pk")
    return sum("noticed" in check_schedule(schedule_id=pk, now=now) for pk in ids)
