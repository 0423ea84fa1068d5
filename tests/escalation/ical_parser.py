"""A strict RFC 5545 reader for the tests: it refuses what a lenient client would quietly accept
(long or LF-only lines, unescaped TEXT, missing required properties, local or malformed times), so a
feed that passes it is valid, not merely readable."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

NAME = re.compile(r"^(?:[A-Za-z0-9-]+)$")
PARAM = re.compile(r'^([A-Za-z0-9-]+)=((?:"[^"\x00-\x08\x0a-\x1f\x7f]*"|[^";:,\x00-\x08\x0a-\x1f\x7f]*)'
                   r'(?:,(?:"[^"\x00-\x08\x0a-\x1f\x7f]*"|[^";:,\x00-\x08\x0a-\x1f\x7f]*))*)$')
CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
UTC_DATE_TIME = re.compile(r"^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$")
TEXT_PROPERTIES = {"SUMMARY", "DESCRIPTION", "X-WR-CALNAME", "UID", "LOCATION", "COMMENT"}
DATE_TIME_PROPERTIES = {"DTSTART", "DTEND", "DTSTAMP", "CREATED", "LAST-MODIFIED"}


class ICalendarError(ValueError):
    pass


@dataclass
class Component:
    name: str
    properties: list[tuple[str, dict[str, str], str]] = field(default_factory=list)
    components: list[Component] = field(default_factory=list)

    def values(self, name: str) -> list[str]:
        return [value for prop, _, value in self.properties if prop == name]

    def one(self, name: str) -> str:
        found = self.values(name)
        if len(found) != 1:
            raise ICalendarError(f"{self.name} needs exactly one {name}, has {len(found)}")
        return found[0]


def parse_text(value: str) -> str:
    """Unescape a TEXT value, refusing a bare ; , or \\ (RFC 5545 3.3.11)."""
    out, i = [], 0
    while i < len(value):
        char = value[i]
        if char == "\\":
            if i + 1 >= len(value) or value[i + 1] not in "\\;,nN":
                raise ICalendarError(f"bad escape in TEXT {value!r}")
            out.append("\n" if value[i + 1] in "nN" else value[i + 1])
            i += 2
            continue
        if char in ";,":
            raise ICalendarError(f"unescaped {char!r} in TEXT {value!r}")
        out.append(char)
        i += 1
    return "".join(out)


def parse_utc(value: str) -> dt.datetime:
    match = UTC_DATE_TIME.match(value)
    if match is None:
        raise ICalendarError(f"not a UTC DATE-TIME: {value!r}")
    try:
        return dt.datetime(*map(int, match.groups()), tzinfo=dt.UTC)
    except ValueError as exc:
        raise ICalendarError(f"impossible DATE-TIME {value!r}") from exc


def _unfold(data: bytes) -> list[str]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ICalendarError("not UTF-8") from exc
    if not text.endswith("\r\n"):
        raise ICalendarError("the stream must end with CRLF")
    physical = text[:-2].split("\r\n")
    for line in physical:
        if "\r" in line or "\n" in line:
            raise ICalendarError(f"bare CR or LF in {line!r}")
        if len(line.encode()) > 75:
            raise ICalendarError(f"line longer than 75 octets: {line!r}")
    logical: list[str] = []
    for line in physical:
        if line[:1] in (" ", "\t"):
            if not logical:
                raise ICalendarError("continuation line first")
            logical[-1] += line[1:]
        else:
            logical.append(line)
    return logical


def _content_line(line: str) -> tuple[str, dict[str, str], str]:
    # The value starts at the first ":" outside a quoted parameter value.
    quoted, split = False, -1
    for index, char in enumerate(line):
        if char == '"':
            quoted = not quoted
        elif char == ":" and not quoted:
            split = index
            break
    if split < 0:
        raise ICalendarError(f"no value in {line!r}")
    head, value = line[:split], line[split + 1:]
    name, *params = head.split(";")
    if not NAME.match(name):
        raise ICalendarError(f"bad property name {name!r}")
    parsed = {}
    for param in params:
        match = PARAM.match(param)
        if match is None:
            raise ICalendarError(f"bad parameter {param!r}")
        parsed[match[1].upper()] = match[2]
    if CONTROL.search(value):
        raise ICalendarError(f"control character in {line!r}")
    return name.upper(), parsed, value


def parse_calendar(data: bytes) -> Component:
    """The VCALENDAR in ``data``, TEXT values unescaped; ICalendarError for anything invalid."""
    stack: list[Component] = []
    root: Component | None = None
    for line in _unfold(data):
        name, params, value = _content_line(line)
        if name == "BEGIN":
            if root is not None or (not stack and value != "VCALENDAR"):
                raise ICalendarError(f"unexpected BEGIN:{value}")
            component = Component(value)
            if stack:
                stack[-1].components.append(component)
            stack.append(component)
        elif name == "END":
            if not stack or stack[-1].name != value:
                raise ICalendarError(f"unbalanced END:{value}")
            done = stack.pop()
            if not stack:
                root = done
        else:
            if not stack:
                raise ICalendarError(f"property outside a component: {name}")
            if name in TEXT_PROPERTIES:
                value = parse_text(value)
            if name in DATE_TIME_PROPERTIES:
                parse_utc(value)
            stack[-1].properties.append((name, params, value))
    if root is None or stack:
        raise ICalendarError("no complete VCALENDAR")
    if root.one("VERSION") != "2.0":
        raise ICalendarError("VERSION must be 2.0")
    root.one("PRODID")
    for event in root.components:
        if event.name != "VEVENT":
            continue
        for required in ("UID", "DTSTAMP", "DTSTART"):
            event.one(required)
        for optional in ("DTEND", "SUMMARY", "DESCRIPTION"):
            if len(event.values(optional)) > 1:
                raise ICalendarError(f"VEVENT has several {optional}")
        if event.values("DTEND") and parse_utc(event.one("DTEND")) <= parse_utc(event.one("DTSTART")):
            raise ICalendarError("DTEND must be after DTSTART")
    return root


def events(calendar: Component) -> list[tuple[dt.datetime, dt.datetime, str]]:
    """(start, end, summary) of every VEVENT, in order."""
    return [(parse_utc(e.one("DTSTART")), parse_utc(e.one("DTEND")), e.one("SUMMARY"))
            for e in calendar.components if e.name == "VEVENT"]
