"""Checks and parsers for schedule input shared by the API, the admin and the services: IANA zones,
``HH:MM`` times and restriction windows. Each raises ValueError with a message fit for a 400."""

from __future__ import annotations

import datetime as dt
import functools
import re
import zoneinfo
from typing import Any

from apps.escalation.oncall import Restriction

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WEEKDAYS = DAY_NAMES[:5]
#: Instants and start dates outside these years are refused: nobody schedules on-call there, and near the
#: ends of datetime's range converting a local time overflows.
MIN_YEAR, MAX_YEAR = 1970, 2200
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def validate_time_zone(name: str) -> str:
    """An IANA zone name the server's tz database knows (``Europe/Berlin``, ``UTC``)."""
    if not isinstance(name, str) or name not in _zones():
        raise ValueError(f"Unknown time zone {name!r}: use an IANA name such as Europe/Berlin.")
    return name


def parse_hhmm(value: Any) -> dt.time:
    """``"HH:MM"`` (24-hour) to a time."""
    match = _HHMM.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"Expected a time as HH:MM (00:00-23:59), got {value!r}.")
    return dt.time(int(match[1]), int(match[2]))


def check_year(value: dt.date) -> None:
    """ValueError for a date or datetime outside MIN_YEAR..MAX_YEAR."""
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise ValueError(f"Expected a year between {MIN_YEAR} and {MAX_YEAR}, got {value.year}.")


def format_hhmm(value: dt.time) -> str:
    return value.strftime("%H:%M")


def normalize_restrictions(data: Any) -> list[dict[str, Any]]:
    """Validate ``[{"days": ["mon", …], "start": "09:00", "end": "17:00"}, …]`` and return it in its
    stored form (days in week order, lower case). ``days`` defaults to every day; ``end`` earlier than
    ``start`` runs past midnight, ``end == start`` is the whole day."""
    if data is None:
        return []
    if not isinstance(data, list):
        raise ValueError('Expected a list of windows like {"days": ["mon"], "start": "09:00", "end": "17:00"}.')
    stored = []
    for index, window in enumerate(data):
        if not isinstance(window, dict):
            raise ValueError(f"Window {index}: expected an object with days, start and end.")
        unknown = set(window) - {"days", "start", "end"}
        if unknown:
            raise ValueError(f"Window {index}: unknown keys {', '.join(sorted(unknown))}.")
        days = window.get("days", list(DAY_NAMES))
        if days == "weekdays":
            days = list(WEEKDAYS)
        if not isinstance(days, list) or not days or any(str(day).lower() not in DAY_NAMES for day in days):
            raise ValueError(f"Window {index}: days must be a non-empty list of {', '.join(DAY_NAMES)}.")
        try:
            start, end = parse_hhmm(window.get("start")), parse_hhmm(window.get("end"))
        except ValueError as exc:
            raise ValueError(f"Window {index}: {exc}") from exc
        wanted = {str(day).lower() for day in days}
        stored.append({"days": [day for day in DAY_NAMES if day in wanted], "start": format_hhmm(start),
                       "end": format_hhmm(end)})
    return stored


def restrictions_from_stored(stored: list[dict[str, Any]]) -> tuple[Restriction, ...]:
    """The pure function's form of stored (already validated) windows."""
    return tuple(Restriction(weekdays=frozenset(DAY_NAMES.index(day) for day in window["days"]),
                             start=parse_hhmm(window["start"]), end=parse_hhmm(window["end"]))
                 for window in stored)
