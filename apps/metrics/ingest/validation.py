"""What a series must satisfy before it reaches the database, whatever door it came through.

Every parser maps its format onto a series key (``naming``) and then asks these functions whether the
key can be stored. A series that cannot is rejected with the returned reason and its line/item; the
rest of the batch is stored (the partial-write contract of ``types``). The rules:

* no control character (C0: U+0000-U+001F, and DEL U+007F) in a metric name, label name or label
  value, and no lone surrogate (a JSON ``"\\ud800"`` escape: text that has no UTF-8 encoding).
  PostgreSQL cannot store NUL at all and the rest are never meant: a tab or newline in a label value
  is a client bug that would show up as an invisible difference between two series;
* at most ``max_labels`` labels per series (not counting the metric name), names of at most
  ``max_name_bytes`` bytes, label values of at most ``max_label_value_bytes`` UTF-8 bytes;
* the series' host (the first of the host labels present, port stripped from ``instance``) is not
  blank and fits ``Host.name``;
* units fit ``Series.unit``; free text that is stored but not a label (Prometheus help, agent
  ``host_info``) only has to be storable: no NUL, no lone surrogate, no NaN/Infinity in JSON.

The limits come in :class:`~apps.metrics.ingest.types.SeriesLimits` (the views build them from the
settings, capped by the database columns). Parsers cache validated series keys across requests, so each
distinct series is checked once per process; :func:`use_limits` drops those caches when the limits change.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from functools import lru_cache

from apps.metrics.ingest.types import DEFAULT_LIMITS, SeriesKey, SeriesLimits

__all__ = [
    "clear_caches",
    "count_problem",
    "forbidden_char",
    "host_of",
    "host_problem",
    "json_problem",
    "labels_problem",
    "name_problem",
    "printable",
    "register_cache",
    "series_problem",
    "storable_text_problem",
    "strip_port",
    "unit_problem",
    "use_limits",
    "value_problem",
]

_FORBIDDEN = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")
# What PostgreSQL text and jsonb cannot hold at all.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _describe(char: str) -> str:
    code = ord(char)
    if 0xD800 <= code <= 0xDFFF:
        return f"is not valid UTF-8 (lone surrogate U+{code:04X})"
    return f"contains the control character U+{code:04X}"


def forbidden_char(text: str) -> str | None:
    """Why ``text`` may not be a name, label value or host (a control character or a lone surrogate)."""
    match = _FORBIDDEN.search(text)
    return None if match is None else _describe(match.group())


def storable_text_problem(text: str) -> str | None:
    """Why free text cannot be stored in PostgreSQL (NUL, lone surrogate), or None."""
    match = _UNSTORABLE.search(text)
    return None if match is None else _describe(match.group())


def printable(text: str) -> str:
    """``text`` with control characters and lone surrogates written as escapes, for error messages and
    headers: a reply must never carry a raw NUL or CR back to the client."""
    return _FORBIDDEN.sub(lambda match: match.group().encode("unicode_escape").decode("ascii"), text)


def _utf8_len(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8"))


def _text_problem(text: str, what: str, max_bytes: int, setting: str) -> str | None:
    """Why ``text`` cannot be stored: a forbidden character, or more UTF-8 bytes than ``max_bytes``."""
    bad = forbidden_char(text)
    if bad:
        return f"{what} {bad}"
    size = _utf8_len(text)
    if size > max_bytes:
        return f"{what} is {size} bytes long; the limit is {max_bytes} ({setting})"
    return None


def name_problem(name: str, limits: SeriesLimits, what: str = "metric name") -> str | None:
    """Why a mapped metric or label name cannot be stored, or None."""
    if not name:
        return f"{what} is empty"
    return _text_problem(name, what, limits.max_name_bytes, "FIBERSTACK_INGEST_MAX_NAME_BYTES")


def value_problem(value: str, limits: SeriesLimits) -> str | None:
    """Why a label value cannot be stored, or None (an empty value is fine: it means "no such label")."""
    return _text_problem(value, "value", limits.max_label_value_bytes, "FIBERSTACK_INGEST_MAX_LABEL_VALUE_BYTES")


def host_problem(host: str, limits: SeriesLimits) -> str | None:
    """Why ``host`` cannot name a Host (blank, control characters, longer than ``Host.name``), or None."""
    if not host.strip():
        return "host name is blank"
    bad = forbidden_char(host)
    if bad:
        return f"host name {bad}"
    if len(host) > limits.max_host_chars:
        return f"host name is {len(host)} characters long; the limit is {limits.max_host_chars}"
    return None


def count_problem(labels: tuple[tuple[str, str], ...], limits: SeriesLimits) -> str | None:
    """Why a label set has too many labels, or None."""
    if len(labels) > limits.max_labels:
        return (f"{len(labels)} labels; the limit is {limits.max_labels} per series "
                "(FIBERSTACK_INGEST_MAX_LABELS)")
    return None


def labels_problem(labels: tuple[tuple[str, str], ...], limits: SeriesLimits) -> str | None:
    """Why a mapped, sorted label set cannot be stored, or None."""
    problem = count_problem(labels, limits)
    if problem:
        return problem
    for name, value in labels:
        problem = name_problem(name, limits, "label name")
        if problem:
            return problem
        problem = value_problem(value, limits)
        if problem:
            return f"label {name!r}: {problem}"
    host = host_of(labels, limits.host_labels)
    if host:
        problem = host_problem(host, limits)
        if problem:
            return problem
    return None


def series_problem(key: SeriesKey, limits: SeriesLimits) -> str | None:
    """Why a whole series key cannot be stored, or None."""
    return name_problem(key[0], limits) or labels_problem(key[1], limits)


def unit_problem(unit: str, limits: SeriesLimits) -> str | None:
    """Why a unit cannot be stored in ``Series.unit``, or None."""
    bad = forbidden_char(unit)
    if bad:
        return f"unit {bad}"
    if len(unit) > limits.max_unit_chars:
        return f"unit is {len(unit)} characters long; the limit is {limits.max_unit_chars}"
    return None


def json_problem(value: object, max_depth: int, path: str = "") -> str | None:
    """Why a decoded JSON document cannot be stored in a jsonb column (NUL or a lone surrogate in a key
    or string, NaN/Infinity, which Python's ``json`` accepts and jsonb does not), or None. Nesting is
    bounded too: whatever stores the document later (``json.dumps``, Django's JSONField) recurses, and
    a document that ``json.loads`` barely accepted would exhaust the stack there."""
    stack: list[tuple[str, object, int]] = [(path, value, 0)]
    while stack:
        where, item, depth = stack.pop()
        if depth > max_depth:
            return f"{where or 'value'} is nested deeper than {max_depth} levels"
        if isinstance(item, str):
            bad = storable_text_problem(item)
            if bad:
                return f"{where or 'value'} {bad}"
        elif isinstance(item, float) and not math.isfinite(item):
            return f"{where or 'value'} is {item!r}, which JSON cannot store"
        elif isinstance(item, dict):
            for key, child in item.items():
                bad = storable_text_problem(key) if isinstance(key, str) else None
                if bad:
                    return f"key {key!r} {bad}"
                stack.append((f"{where}.{key}" if where else str(key), child, depth + 1))
        elif isinstance(item, list):
            stack.extend((f"{where}[{index}]", child, depth + 1) for index, child in enumerate(item))
    return None


# ---------------------------------------------------------------------------------------------------------
# The host of a series: shared with the ingest service, which registers exactly the host validated here.


def strip_port(value: str) -> str:
    """``10.0.0.1:9100`` -> ``10.0.0.1``, ``[::1]:9100`` -> ``::1``, ``web-1`` and bare IPv6 unchanged."""
    if value.startswith("["):
        end = value.find("]")
        return value[1:end] if end > 0 else value
    head, sep, port = value.rpartition(":")
    if sep and port.isdigit() and ":" not in head and head:
        return head
    return value


@lru_cache(maxsize=200_000)
def host_of(labels: tuple[tuple[str, str], ...], names: tuple[str, ...]) -> str | None:
    """The host a series belongs to: the first label of ``names`` present (port stripped from
    ``instance``), or None for series that belong to no host."""
    found = dict(labels)
    for name in names:
        value = found.get(name)
        if value:
            return strip_port(value) if name == "instance" else value
    return None


# ---------------------------------------------------------------------------------------------------------
# Caches of validated keys


_current_limits = DEFAULT_LIMITS
_cache_clearers: list[Callable[[], None]] = []


def register_cache(clear: Callable[[], None]) -> None:
    """Register a process-wide cache of validated series; it is cleared when the limits change."""
    _cache_clearers.append(clear)


def clear_caches() -> None:
    """Forget every cached verdict (the benchmark's "cold" start; a limits change does it by itself)."""
    for clear in _cache_clearers:
        clear()


def use_limits(limits: SeriesLimits) -> None:
    """Called by every parser at the start of a request: the cached verdicts were reached under the
    previous limits, so a change of settings (an override in tests, a reload) invalidates them."""
    global _current_limits
    if limits is _current_limits or limits == _current_limits:
        return
    clear_caches()
    _current_limits = limits
