"""Every schedule of an organization resolved for a window, for pages: who is on call now, who is next,
and the final schedule cut into calendar days in the schedule's zone. All schedules are loaded in a
fixed number of queries (schedules, layers, layer members, overrides, active members), so the on-call
page and the overview cost the same with one schedule or fifty; the resolution itself is
`apps.escalation.oncall`, exactly what the engine and the API use."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Prefetch

from apps.escalation import oncall
from apps.escalation.models import OnCallSchedule, ScheduleLayer, ScheduleLayerMember, ScheduleOverride
from apps.organizations.models import Membership

HORIZON = dt.timedelta(days=14)


@dataclass(frozen=True)
class DaySegment:
    """One shift's part of a calendar day: where the bar starts and how wide it is (percent of the day)."""

    shift: oncall.Shift[Any]
    start: dt.datetime
    end: dt.datetime
    left: float
    width: float


@dataclass(frozen=True)
class CalendarDay:
    """A local day of a schedule (23 or 25 hours long across a DST change) and its shifts."""

    date: dt.date
    start: dt.datetime
    end: dt.datetime
    segments: list[DaySegment]


@dataclass
class ScheduleView:
    """A schedule resolved for [start, end): who is on call at ``start`` and from which source, until when
    (None: past the window), the next shift that puts someone else on, and the final schedule (also cut
    into ``days``)."""

    schedule: OnCallSchedule
    on_call: list[Any]
    source: str | None
    current: oncall.Shift[Any] | None
    next_shift: oncall.Shift[Any] | None
    shifts: list[oncall.Shift[Any]]
    until: dt.datetime | None = None
    days: list[CalendarDay] = field(default_factory=list)


def load_specs(organization: Any, start: dt.datetime, end: dt.datetime,
               ) -> list[tuple[OnCallSchedule, oncall.Schedule[Any]]]:
    """Each schedule of ``organization`` (by name) with its spec, overrides limited to [start, end)."""
    layers = ScheduleLayer.objects.order_by("priority", "pk").prefetch_related(
        Prefetch("memberships", queryset=ScheduleLayerMember.objects.select_related("user")))
    schedules = list(OnCallSchedule.objects.for_org(organization).order_by("name", "pk")
                     .prefetch_related(Prefetch("layers", queryset=layers)))
    if not schedules:
        return []
    overrides: dict[int, list[ScheduleOverride]] = defaultdict(list)
    for override in (ScheduleOverride.objects.filter(schedule__in=schedules, end__gt=start, start__lt=end)
                     .select_related("user").order_by("created_at", "pk")):
        overrides[override.schedule_id].append(override)
    current = set(Membership.objects.filter(organization=organization, user__is_active=True)
                  .values_list("user_id", flat=True))
    return [(s, s.spec_from_rows(s.layers.all(), overrides[s.pk], current)) for s in schedules]


def _next_shift(shifts: list[oncall.Shift[Any]], now: dt.datetime, on_call: list[Any]) -> oncall.Shift[Any] | None:
    """The first shift after ``now`` that puts someone other than the current on-call on."""
    for shift in shifts:
        if shift.start > now and shift.user not in on_call:
            return shift
    return None


def calendar_days(spec: oncall.Schedule[Any], shifts: list[oncall.Shift[Any]], start: dt.datetime,
                  end: dt.datetime) -> list[CalendarDay]:
    """The local days of the schedule's zone that overlap [start, end), each with its shifts clipped."""
    tz = oncall.zone(spec.time_zone)
    day = oncall.wall_clock(start, tz).date()
    last = oncall.wall_clock(end - dt.timedelta(microseconds=1), tz).date()
    days = []
    while day <= last:
        opens = oncall.local_to_instant(dt.datetime.combine(day, dt.time()), tz)
        closes = oncall.local_to_instant(dt.datetime.combine(day + dt.timedelta(days=1), dt.time()), tz)
        length = (closes - opens).total_seconds()
        segments = []
        for shift in shifts:
            lo, hi = max(shift.start, opens), min(shift.end, closes)
            if lo < hi:
                segments.append(DaySegment(shift, lo, hi, left=round(100 * (lo - opens).total_seconds() / length, 3),
                                           width=round(100 * (hi - lo).total_seconds() / length, 3)))
        days.append(CalendarDay(day, opens, closes, segments))
        day += dt.timedelta(days=1)
    return days


def schedule_views(organization: Any, now: dt.datetime, horizon: dt.timedelta = HORIZON, *,
                   with_days: bool = False) -> list[ScheduleView]:
    """Every schedule resolved for [now, now + horizon): the on-call page (``with_days``) and the overview."""
    end = now + horizon
    views = []
    for schedule, spec in load_specs(organization, now, end):
        on_call, source = oncall.on_call_at(spec, now)
        shifts = oncall.final_schedule(spec, now, end)
        current = shifts[0] if shifts and shifts[0].start <= now else None
        views.append(ScheduleView(
            schedule=schedule, on_call=on_call, source=source, current=current,
            next_shift=_next_shift(shifts, now, on_call), shifts=shifts,
            until=current.end if current is not None and current.end < end else None,
            days=calendar_days(spec, shifts, now, end) if with_days else [],
        ))
    return views


def source_label(source: str | None) -> str:
    """"override", "layer 2" or "" (the page's words for `oncall.Shift.source`)."""
    if not source:
        return ""
    return source.replace("layer:", "layer ")
