"""Metric and label naming rules shared by every ingest format.

FiberStack stores series in the Prometheus data model, so names follow the Prometheus rules
(https://prometheus.io/docs/concepts/data_model/#metric-names-and-labels) whatever format they arrived in:

* metric names match ``[a-zA-Z_:][a-zA-Z0-9_:]*``;
* label names match ``[a-zA-Z_][a-zA-Z0-9_]*``; names starting with ``__`` are reserved for the system
  and refused when they come from Influx tags, collectd fields or JSON labels (remote_write's
  ``__name__`` is handled by the Prometheus parser itself);
* label values are any UTF-8 text of at most 1024 characters; an empty value means "no such label"
  (as in Prometheus) and the label is dropped.

Formats whose names are free text (Influx line protocol, collectd, JSON) are *sanitized*, not rejected:

* every character outside the allowed set (including every non-ASCII character, and ``:`` in label
  names) becomes ``_``: ``cpu.usage-idle`` -> ``cpu_usage_idle``, ``disk/sda`` -> ``disk_sda``;
* a name that starts with a digit gets a ``_`` prefix: ``5xx_rate`` -> ``_5xx_rate``;
* an empty name is an error (there is nothing to map).

remote_write names already follow the rules, so that parser only *validates* (see
``is_valid_metric_name`` / ``is_valid_label_name``) and rejects a series that breaks them.

Ingest calls these functions once per line or item, so results are cached: ``lru_cache`` for names,
and an interning table for whole series keys so that equal keys are the same tuple object.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

from apps.metrics.ingest.types import SeriesKey

MAX_LABEL_VALUE_LEN = 1024
#: Longer names are almost always a client putting data (ids, URLs) into names; refusing them keeps the
#: series catalogue sane. Prometheus has no limit; VictoriaMetrics and Mimir limit label names similarly.
MAX_NAME_LEN = 256

_METRIC_NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_METRIC_BAD_CHARS = re.compile(r"[^a-zA-Z0-9_:]")
_LABEL_BAD_CHARS = re.compile(r"[^a-zA-Z0-9_]")

_KEY_TABLE_MAX = 200_000
_key_table: dict[SeriesKey, SeriesKey] = {}


class NamingError(ValueError):
    """A name or label value that cannot be stored; ``str(exc)`` is the reason shown to the client."""


def is_valid_metric_name(name: str) -> bool:
    return len(name) <= MAX_NAME_LEN and _METRIC_NAME_RE.fullmatch(name) is not None


def is_valid_label_name(name: str) -> bool:
    return len(name) <= MAX_NAME_LEN and _LABEL_NAME_RE.fullmatch(name) is not None


@lru_cache(maxsize=65536)
def sanitize_metric_name(name: str) -> str:
    """Map a free-text metric name onto the Prometheus rules (see the module docstring)."""
    if not name:
        raise NamingError("metric name is empty")
    if _METRIC_NAME_RE.fullmatch(name) is None:
        name = _METRIC_BAD_CHARS.sub("_", name)
        if name[0].isdigit():
            name = "_" + name
    if len(name) > MAX_NAME_LEN:
        raise NamingError(f"metric name is longer than {MAX_NAME_LEN} characters")
    return name


@lru_cache(maxsize=65536)
def sanitize_label_name(name: str) -> str:
    """Map a free-text label name onto the Prometheus rules; reserved ``__`` names are refused."""
    if not name:
        raise NamingError("label name is empty")
    if _LABEL_NAME_RE.fullmatch(name) is None:
        name = _LABEL_BAD_CHARS.sub("_", name)
        if name[0].isdigit():
            name = "_" + name
    if name.startswith("__"):
        raise NamingError(f"label name {name!r} is reserved (names starting with '__' are internal)")
    if len(name) > MAX_NAME_LEN:
        raise NamingError(f"label name is longer than {MAX_NAME_LEN} characters")
    return name


def check_label_value(value: str) -> str:
    """Return ``value`` unchanged if it can be stored as a label value, else raise NamingError."""
    if len(value) > MAX_LABEL_VALUE_LEN:
        raise NamingError(f"label value is longer than {MAX_LABEL_VALUE_LEN} characters")
    return value


def intern_key(key: SeriesKey) -> SeriesKey:
    """Return the canonical tuple for ``key`` so equal series share one object across requests.

    The table is bounded; when it fills up it is simply cleared, which only costs a few re-inserts.
    """
    found = _key_table.get(key)
    if found is not None:
        return found
    if len(_key_table) >= _KEY_TABLE_MAX:
        _key_table.clear()
    _key_table[key] = key
    return key


def make_labels(pairs: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """Sanitize label names, check values, drop empty values, sort by name; duplicates are an error.

    Duplicates are checked after sanitizing, so ``a-b`` and ``a_b`` on one series collide here instead
    of silently overwriting each other.
    """
    out: dict[str, str] = {}
    seen: set[str] = set()
    for raw_name, value in pairs:
        name = sanitize_label_name(raw_name)
        check_label_value(value)
        if name in seen:
            raise NamingError(f"duplicate label name {name!r}")
        seen.add(name)
        if value:
            out[name] = value
    return tuple(sorted(out.items()))


def make_key(name: str, labels: tuple[tuple[str, str], ...]) -> SeriesKey:
    """Build an interned SeriesKey from an already valid name and sorted label pairs."""
    return intern_key((name, labels))
