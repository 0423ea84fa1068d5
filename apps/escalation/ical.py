"""A small RFC 5545 writer for on-call feeds: VCALENDAR with VEVENTs, all times in UTC (``…Z``), TEXT
escaped, lines folded at 75 octets without splitting a UTF-8 character, CRLF line ends. Written by hand
because a feed of timed events needs only this much; UTC times mean no VTIMEZONE is needed and every
client shows the shifts at the same instants the API does."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass

PRODID = "-//FiberStack//On-call schedules//EN"
MAX_OCTETS = 75
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


@dataclass(frozen=True)
class Event:
    """One VEVENT: a stretch of on-call time."""

    uid: str
    start: dt.datetime
    end: dt.datetime
    summary: str
    description: str = ""


def utc(instant: dt.datetime) -> str:
    """An RFC 5545 DATE-TIME in UTC form (``20260329T070000Z``)."""
    if instant.tzinfo is None:
        raise ValueError("iCalendar times must be timezone-aware")
    return instant.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def escape_text(value: str) -> str:
    """A TEXT value (RFC 5545 3.3.11): backslash, semicolon and comma escaped, newlines as ``\\n``,
    other control characters dropped (they are not allowed at all)."""
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    value = value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")
    return _CONTROL.sub("", value)


def fold(line: str) -> str:
    """Fold a content line into physical lines of at most 75 octets (3.1); continuation lines start with
    one space, which counts toward their 75."""
    encoded = line.encode()
    if len(encoded) <= MAX_OCTETS:
        return line
    pieces: list[str] = []
    start, limit = 0, MAX_OCTETS
    while start < len(encoded):
        end = min(start + limit, len(encoded))
        while end < len(encoded) and (encoded[end] & 0xC0) == 0x80:  # never cut inside a character
            end -= 1
        pieces.append(encoded[start:end].decode())
        start, limit = end, MAX_OCTETS - 1
    return "\r\n ".join(pieces)


def render_calendar(name: str, events: Iterable[Event], *, now: dt.datetime) -> bytes:
    """The whole feed, UTF-8 encoded; ``now`` is every event's DTSTAMP."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", f"PRODID:{PRODID}", "CALSCALE:GREGORIAN", "METHOD:PUBLISH",
             f"X-WR-CALNAME:{escape_text(name)}"]
    stamp = utc(now)
    for event in events:
        lines += ["BEGIN:VEVENT", f"UID:{escape_text(event.uid)}", f"DTSTAMP:{stamp}",
                  f"DTSTART:{utc(event.start)}", f"DTEND:{utc(event.end)}",
                  f"SUMMARY:{escape_text(event.summary)}", "TRANSP:OPAQUE"]
        if event.description:
            lines.append(f"DESCRIPTION:{escape_text(event.description)}")
        lines.append("END:VEVENT")
    lines.append("END:VCALENDAR")
    return "".join(fold(line) + "\r\n" for line in lines).encode()
