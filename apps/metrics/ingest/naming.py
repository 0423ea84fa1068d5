"""Metric and label naming rules shared by every ingest format.

FiberStack stores series in the Prometheus data model, so names follow the Prometheus rules
(https://prometheus.io/docs/concepts/data_model/#metric-names-and-labels) whatever format they arrived in:

* metric names match ``[a-zA-Z_:][a-zA-Z0-9_:]*``;
* label names match ``[a-zA-Z_][a-zA-Z0-9_]*``; names starting with ``__`` are reserved for the system
  and refused when they come from Influx tags, collectd fields or JSON labels (remote_write's
  ``__name__`` is handled by the Prometheus parser itself);
* label values are any UTF-8 text; an empty value means "no such label" (as in Prometheus) and the
  label is dropped. Sizes, control characters and the host are checked by ``validation``.

Formats whose names are free text (Influx line protocol, collectd, JSON) are *sanitized*, not rejected:

* every character outside the allowed set (including every non-ASCII character, and ``:`` in label
  names) becomes ``_``: ``cpu.usage-idle`` -> ``cpu_usage_idle``, ``disk/sda`` -> ``disk_sda``;
* a name that starts with a digit gets a ``_`` prefix: ``5xx_rate`` -> ``_5xx_rate``;
* an empty name is an error (there is nothing to map), and so is a name with a control character or a
  lone surrogate (``validation.forbidden_char``): mapping ``cpu\x00`` to ``cpu_`` would silently merge a
  broken client's series with a real one.

remote_write names already follow the rules, so that parser only *validates* (see
``is_valid_metric_name`` / ``is_valid_label_name``) and rejects a series that breaks them.

Ingest calls these functions once per line or item, so results are cached: ``lru_cache`` for names,
and an interning table for whole series keys so that equal keys are the same tuple object.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

from apps.metrics.ingest.types import SeriesKey, SeriesLimits
from apps.metrics.ingest.validation import forbidden_char, labels_problem, name_problem, register_cache

_METRIC_NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_METRIC_BAD_CHARS = re.compile(r"[^a-zA-Z0-9_:]")
_LABEL_BAD_CHARS = re.compile(r"[^a-zA-Z0-9_]")

_KEY_TABLE_MAX = 200_000
_key_table: dict[SeriesKey, SeriesKey] = {}


class NamingError(ValueError):
    """A name or label value that cannot be stored; ``str(exc)`` is the reason shown to the client."""


def is_valid_metric_name(name: str) -> bool:
    """Syntax only; the length limit is ``validation.name_problem``'s."""
    return _METRIC_NAME_RE.fullmatch(name) is not None


def is_valid_label_name(name: str) -> bool:
    """Syntax only; the length limit is ``validation.name_problem``'s."""
    return _LABEL_NAME_RE.fullmatch(name) is not None


def _check_raw(name: str, what: str) -> None:
    if not name:
        raise NamingError(f"{what} is empty")
    bad = forbidden_char(name)
    if bad:
        raise NamingError(f"{what} {bad}")


@lru_cache(maxsize=65536)
def sanitize_metric_name(name: str) -> str:
    """Map a free-text metric name onto the Prometheus rules (see the module docstring)."""
    if _METRIC_NAME_RE.fullmatch(name) is None:
        _check_raw(name, "metric name")
        name = _METRIC_BAD_CHARS.sub("_", name)
        if name[0].isdigit():
            name = "_" + name
    return name


@lru_cache(maxsize=65536)
def sanitize_label_name(name: str) -> str:
    """Map a free-text label name onto the Prometheus rules; reserved ``__`` names are refused."""
    if _LABEL_NAME_RE.fullmatch(name) is None:
        _check_raw(name, "label name")
        name = _LABEL_BAD_CHARS.sub("_", name)
        if name[0].isdigit():
            name = "_" + name
    if name.startswith("__"):
        raise NamingError(f"label name {name!r} is reserved (names starting with '__' are internal)")
    return name


# Free-text metric name -> (mapped name, None) or (None, why it is refused). The verdict depends on the
# limits, so the table is cleared with the parsers' other caches when they change (validation.use_limits).
_METRIC_NAMES_MAX = 65_536
_metric_names: dict[str, tuple[str, None] | tuple[None, str]] = {}
register_cache(_metric_names.clear)


def make_metric_name(raw: str, limits: SeriesLimits) -> str:
    """Sanitize a free-text metric name and apply ``validation``; raises NamingError with the reason.
    Cached per process (JSON and agent payloads repeat the same names in every request), so the parser
    must have called ``validation.use_limits`` for this request."""
    found = _metric_names.get(raw)
    if found is None:
        try:
            name = sanitize_metric_name(raw)
            problem = name_problem(name, limits)
            found = (None, problem) if problem else (name, None)
        except NamingError as exc:
            found = (None, str(exc))
        if len(_metric_names) >= _METRIC_NAMES_MAX:
            _metric_names.clear()
        _metric_names[raw] = found
    if found[0] is None:
        raise NamingError(found[1])
    return found[0]


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


def make_labels(pairs: Iterable[tuple[str, str]], limits: SeriesLimits) -> tuple[tuple[str, str], ...]:
    """Sanitize label names, drop empty values, sort by name, then apply ``validation``; duplicates are an
    error. Raises NamingError with the reason.

    Duplicates are checked after sanitizing, so ``a-b`` and ``a_b`` on one series collide here instead
    of silently overwriting each other.
    """
    out: dict[str, str] = {}
    seen: set[str] = set()
    for raw_name, value in pairs:
        name = sanitize_label_name(raw_name)
        if name in seen:
            raise NamingError(f"duplicate label name {name!r}")
        seen.add(name)
        if value:
            out[name] = value
    labels = tuple(sorted(out.items()))
    problem = labels_problem(labels, limits)
    if problem:
        raise NamingError(problem)
    return labels


def make_key(name: str, labels: tuple[tuple[str, str], ...]) -> SeriesKey:
    """Build an interned SeriesKey from an already valid name and sorted label pairs."""
    return intern_key((name, labels))
