"""Log levels: everything shippers send, normalised to the eight syslog severities.

Stored names are ``debug info notice warning error critical alert emergency`` (RFC 5424 order, 7 ... 0).
Accepted: syslog keywords and numbers (``emerg``, ``crit``, ``err``, ``warn``, ``0``-``7``), Python
(``WARNING``, ``CRITICAL``, ``FATAL``, numbers 10-50), Java/log4j/logback (``SEVERE``, ``FINE``, ``TRACE``),
Go/zap (``dpanic``, ``panic``) and .NET (``Information``, ``Verbose``), case-insensitively."""

from __future__ import annotations

LEVELS: tuple[str, ...] = ("emergency", "alert", "critical", "error", "warning", "notice", "info", "debug")
SEVERITY: dict[str, int] = {name: number for number, name in enumerate(LEVELS)}
DEFAULT = "info"

_ALIASES: dict[str, str] = {
    **{name: name for name in LEVELS},
    "emerg": "emergency", "panic": "emergency",
    "crit": "critical", "fatal": "critical", "severe": "critical", "dpanic": "critical",
    "err": "error", "eror": "error", "failure": "error",
    "warn": "warning",
    "informational": "info", "information": "info", "inf": "info", "config": "info",
    "trace": "debug", "fine": "debug", "finer": "debug", "finest": "debug", "verbose": "debug", "dbg": "debug",
    "all": "debug",
}
# Python's logging numbers (Java's are larger and never ambiguous with these).
_PYTHON_NUMBERS = {10: "debug", 20: "info", 30: "warning", 40: "error", 50: "critical"}


def normalize(value: object) -> str | None:
    """The stored level for ``value``, or None when it is not a level anyone uses."""
    if value is None or value == "":
        return DEFAULT
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float) or (isinstance(value, str) and value.strip().isdigit()):
        number = int(value)
        if 0 <= number <= 7:
            return LEVELS[number]
        return _PYTHON_NUMBERS.get(number)
    if isinstance(value, str):
        return _ALIASES.get(value.strip().lower())
    return None


def parse_filter(raw: str) -> list[str]:
    """``error`` / ``err,warn`` / ``warning+`` (that level and everything more severe) -> stored names.
    Raises ValueError naming the unknown level."""
    names: list[str] = []
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        at_least = part.endswith("+")
        level = normalize(part.rstrip("+")) if part.rstrip("+") else None
        if level is None:
            raise ValueError(f"unknown level {part!r}: use one of {', '.join(LEVELS)} (or a syslog/Python name)")
        names.extend(LEVELS[: SEVERITY[level] + 1] if at_least else [level])
    return list(dict.fromkeys(names))
