"""Who is on call, as pure functions of a schedule's plain data (no database, no clock): the same
answer for the API, the escalation engine, the calendar view and the iCalendar feed.

Every rotation is wall-clock arithmetic in the schedule's zone: shift ``k`` of a layer starts when the
local clock reads ``start_date handoff_time + k * shift_seconds`` (a day for daily, a week for weekly).
So a "daily 09:00" handoff is 09:00 local on both sides of a DST change, in any zone (Lord Howe's
30-minute change included), and the shift that spans a change is shorter or longer in real time --
never moved by an hour (Grafana OnCall #3261, #5247).

Local times a change makes nonexistent or ambiguous follow one rule, chosen on purpose: **a local time
happens at the first instant the wall clock reads it or later**.

* Nonexistent (spring forward, e.g. 02:30 in Berlin on the last Sunday of March): the clock jumps from
  02:00 to 03:00 over 02:30, so a 02:30 handoff happens at the jump, 03:00 local. (Not RFC 5545's
  "offset before the gap", which would make it 03:30 and keep the outgoing person on for another
  half hour after their handoff time has visibly passed.)
* Ambiguous (fall back, e.g. 02:30 in Berlin on the last Sunday of October): the handoff happens at the
  first reading (still summer time) and does not happen again when the clock repeats the hour.

Restriction windows (e.g. weekdays 09:00-17:00) open and close by the same rule, so a handoff or a window
edge is always a single, well-defined instant and the mapping from local to real time is monotonic.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar
from zoneinfo import ZoneInfo

U = TypeVar("U")

UTC = dt.UTC
DAY_SECONDS = 86_400
WEEK_SECONDS = 7 * DAY_SECONDS
OVERRIDE = "override"

Interval = tuple[dt.datetime, dt.datetime]


@dataclass(frozen=True)
class Restriction:
    """A weekly window in local time during which a layer is on shift: it opens at ``start`` on each of
    ``weekdays`` (0 = Monday) and closes at the following ``end`` -- the same day, or the next day when
    ``end`` is earlier than ``start``; ``end == start`` is a whole day."""

    weekdays: frozenset[int]
    start: dt.time
    end: dt.time


@dataclass(frozen=True)
class Layer(Generic[U]):
    """One rotation: ``members`` take turns, each for ``shift_seconds`` of wall-clock time, the first from
    ``start_date`` at ``handoff_time`` local. A member of None is a gap (e.g. someone who left the
    organization): nobody is on this layer during that turn and the rotation does not shift."""

    priority: int
    shift_seconds: int
    start_date: dt.date
    handoff_time: dt.time
    members: tuple[U | None, ...]
    restrictions: tuple[Restriction, ...] = ()


@dataclass(frozen=True)
class Override(Generic[U]):
    """``user`` covers [start, end) whatever the layers say. Where overrides overlap, the later one in the
    schedule's tuple (the more recently created) wins, as in PagerDuty."""

    user: U
    start: dt.datetime
    end: dt.datetime


@dataclass(frozen=True)
class Schedule(Generic[U]):
    """A schedule's data: its IANA zone, its layers (the highest ``priority`` with someone on shift wins;
    equal priorities: the earlier layer) and its overrides, oldest first (they beat every layer)."""

    time_zone: str
    layers: tuple[Layer[U], ...] = ()
    overrides: tuple[Override[U], ...] = ()


@dataclass(frozen=True)
class Shift(Generic[U]):
    """A stretch of the final schedule: ``user`` is on call in [start, end) because of ``source``
    (``"override"`` or ``"layer:<priority>"``)."""

    user: U
    start: dt.datetime
    end: dt.datetime
    source: str


# --- local time -------------------------------------------------------------------------------------


def wall_clock(instant: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """What a clock in ``tz`` reads at ``instant`` (naive)."""
    return instant.astimezone(tz).replace(tzinfo=None, fold=0)


def local_to_instant(local: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """The first instant at which the clock in ``tz`` reads ``local`` or later (in UTC): the first
    reading of an ambiguous time, the end of the gap for a nonexistent one."""
    earlier = local.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if wall_clock(earlier, tz) == local:
        return earlier  # exists; fold=0 is the first of two readings
    # In a gap the two folds apply the offsets from either side of the transition and land on either side
    # of it; the clock jumps over `local` somewhere between them. Transitions are on whole seconds.
    a = local.replace(tzinfo=tz, fold=1).astimezone(UTC)
    lo, hi = sorted((math.floor(a.timestamp()), math.ceil(earlier.timestamp())))
    while hi - lo > 1:  # invariant: the clock reads < local at lo and >= local at hi
        mid = (lo + hi) // 2
        if wall_clock(dt.datetime.fromtimestamp(mid, UTC), tz) >= local:
            hi = mid
        else:
            lo = mid
    return dt.datetime.fromtimestamp(hi, UTC)


def zone(name: str) -> ZoneInfo:
    """The ZoneInfo for an IANA name (ZoneInfoNotFoundError or ValueError for a bad one)."""
    return ZoneInfo(name)


def _aware(instant: dt.datetime, name: str) -> dt.datetime:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {instant!r}")
    return instant.astimezone(UTC)


# --- one layer --------------------------------------------------------------------------------------


def _origin(layer: Layer[U]) -> dt.datetime:
    return dt.datetime.combine(layer.start_date, layer.handoff_time)


def shift_start(layer: Layer[U], tz: ZoneInfo, k: int) -> dt.datetime:
    """The instant shift ``k`` (0 = the first member's first turn) begins."""
    return local_to_instant(_origin(layer) + dt.timedelta(seconds=k * layer.shift_seconds), tz)


def shift_index(layer: Layer[U], tz: ZoneInfo, at: dt.datetime) -> int:
    """The last shift that has begun at ``at``; -1 before the first. Shift starts never decrease (see the
    module docstring), so the estimate from the wall clock only needs a nudge near a DST change."""
    elapsed = (wall_clock(at, tz) - _origin(layer)).total_seconds()
    k = math.floor(elapsed / layer.shift_seconds)
    while shift_start(layer, tz, k + 1) <= at:
        k += 1
    while k >= 0 and shift_start(layer, tz, k) > at:
        k -= 1
    return max(k, -1)


def _window(restriction: Restriction, day: dt.date, tz: ZoneInfo) -> Interval | None:
    if day.weekday() not in restriction.weekdays:
        return None
    end_day = day if restriction.end > restriction.start else day + dt.timedelta(days=1)
    opens = local_to_instant(dt.datetime.combine(day, restriction.start), tz)
    closes = local_to_instant(dt.datetime.combine(end_day, restriction.end), tz)
    return (opens, closes) if opens < closes else None


def _windows(layer: Layer[U], tz: ZoneInfo, start: dt.datetime, end: dt.datetime) -> list[Interval]:
    """The layer's restriction windows overlapping [start, end), merged. A window lasts at most a day of
    wall-clock time, so one day of margin on either side finds every one."""
    day = wall_clock(start, tz).date() - dt.timedelta(days=1)
    last = wall_clock(end, tz).date() + dt.timedelta(days=1)
    found: list[Interval] = []
    while day <= last:
        for restriction in layer.restrictions:
            window = _window(restriction, day, tz)
            if window is not None and window[0] < end and window[1] > start:
                found.append(window)
        day += dt.timedelta(days=1)
    return _merge(sorted(found))


def _merge(intervals: list[Interval]) -> list[Interval]:
    merged: list[Interval] = []
    for opens, closes in intervals:
        if merged and opens <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], closes))
        else:
            merged.append((opens, closes))
    return merged


def _restricted_in(layer: Layer[U], tz: ZoneInfo, at: dt.datetime) -> bool:
    return any(opens <= at < closes for opens, closes in _windows(layer, tz, at, at + dt.timedelta(microseconds=1)))


def layer_member_at(layer: Layer[U], tz: ZoneInfo, at: dt.datetime) -> U | None:
    """Who this layer has on shift at ``at`` (None: nobody -- before its start, outside its
    restrictions, or a gap in its rotation)."""
    if not layer.members or layer.shift_seconds <= 0:
        return None
    k = shift_index(layer, tz, at)
    if k < 0:
        return None
    if layer.restrictions and not _restricted_in(layer, tz, at):
        return None
    return layer.members[k % len(layer.members)]


def layer_segments(layer: Layer[U], tz: ZoneInfo, start: dt.datetime, end: dt.datetime,
                   ) -> Iterator[tuple[dt.datetime, dt.datetime, U]]:
    """The layer's on-shift stretches inside [start, end), in order: rotation turns cut to the window."""
    if not layer.members or layer.shift_seconds <= 0:
        return
    windows = _windows(layer, tz, start, end) if layer.restrictions else [(start, end)]
    k = max(shift_index(layer, tz, start), 0)
    begins = shift_start(layer, tz, k)
    w = 0
    while begins < end and w < len(windows):
        ends = shift_start(layer, tz, k + 1)
        member = layer.members[k % len(layer.members)]
        if member is not None:
            # Every window overlapping this turn; windows are sorted and disjoint.
            while w < len(windows) and windows[w][1] <= begins:
                w += 1
            i = w
            while i < len(windows) and windows[i][0] < ends:
                lo = max(begins, windows[i][0], start)
                hi = min(ends, windows[i][1], end)
                if lo < hi:
                    yield lo, hi, member
                i += 1
        k += 1
        begins = ends


# --- the schedule -----------------------------------------------------------------------------------


def _by_precedence(layers: Sequence[Layer[U]]) -> list[Layer[U]]:
    return sorted(layers, key=lambda layer: layer.priority, reverse=True)  # stable: ties keep their order


def on_call_at(schedule: Schedule[U], at: dt.datetime) -> tuple[list[U], str | None]:
    """``who_is_on_call`` plus the source of the answer (``"override"``, ``"layer:<priority>"``, None)."""
    at = _aware(at, "at")
    for override in reversed(schedule.overrides):
        if override.start <= at < override.end:
            return [override.user], OVERRIDE
    tz = zone(schedule.time_zone)
    for layer in _by_precedence(schedule.layers):
        member = layer_member_at(layer, tz, at)
        if member is not None:
            return [member], f"layer:{layer.priority}"
    return [], None


def who_is_on_call(schedule: Schedule[U], at: dt.datetime) -> list[U]:
    """The users on call at the instant ``at`` (aware): the latest override covering it, else the
    highest layer with someone on shift, else nobody. A list so that callers need not change if a
    future layer kind puts several people on at once."""
    return on_call_at(schedule, at)[0]


def final_schedule(schedule: Schedule[U], start: dt.datetime, end: dt.datetime) -> list[Shift[U]]:
    """The final schedule in [start, end): layers, restrictions and overrides resolved exactly as
    ``who_is_on_call`` resolves one instant, consecutive stretches of one user from one source merged."""
    start, end = _aware(start, "start"), _aware(end, "end")
    if end <= start:
        return []
    tz = zone(schedule.time_zone)
    # (start, end, user, source, rank): overrides outrank every layer, later overrides earlier ones.
    pieces: list[tuple[dt.datetime, dt.datetime, U, str, tuple[int, int, int]]] = []
    for index, layer in enumerate(schedule.layers):
        rank = (0, layer.priority, -index)
        pieces += [(lo, hi, user, f"layer:{layer.priority}", rank)
                   for lo, hi, user in layer_segments(layer, tz, start, end)]
    for index, override in enumerate(schedule.overrides):
        lo, hi = max(override.start, start), min(override.end, end)
        if lo < hi:
            pieces.append((lo, hi, override.user, OVERRIDE, (1, index, 0)))
    pieces.sort(key=lambda piece: piece[0])
    points = sorted({point for piece in pieces for point in piece[:2]})
    shifts: list[Shift[U]] = []
    active: list[tuple[dt.datetime, dt.datetime, U, str, tuple[int, int, int]]] = []
    taken = 0
    for lo, hi in itertools.pairwise(points):
        while taken < len(pieces) and pieces[taken][0] <= lo:
            active.append(pieces[taken])
            taken += 1
        active = [piece for piece in active if piece[1] > lo]
        if not active:
            continue
        _, _, user, source, _ = max(active, key=lambda piece: piece[4])
        last = shifts[-1] if shifts else None
        if last is not None and last.end == lo and last.user == user and last.source == source:
            shifts[-1] = Shift(user, last.start, hi, source)
        else:
            shifts.append(Shift(user, lo, hi, source))
    return shifts
