"""One JSON document (a shipper's log line) -> one log entry row. The shippers name the same things in
many ways (Elasticsearch's ECS, Filebeat, Vector, rsyslog and syslog-ng templates, Python/Java JSON
loggers, systemd journal fields); ``FIELDS`` lists the accepted names per column, first match wins.
Everything not mapped to a column is kept in ``context`` (JSON)."""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass
from typing import Any

from apps.logs import levels

# column -> accepted keys (a dotted key also matches the nested form: "log.level" is {"log": {"level": ..}}).
FIELDS: dict[str, tuple[str, ...]] = {
    "time": ("@timestamp", "timestamp", "time", "ts", "date", "datetime", "ISODATE", "_time"),
    "message": ("message", "msg", "log", "MESSAGE", "short_message", "text"),
    "level": ("level", "log.level", "severity", "syslogseverity-text", "syslogseverity", "loglevel", "levelname",
              "LEVEL", "PRIORITY", "priority"),
    "host": ("host.name", "host.hostname", "host", "hostname", "HOST", "HOSTNAME", "_HOSTNAME", "source_host",
             "agent.hostname"),
    "service": ("service.name", "service", "app", "application", "SERVICE"),
    "program": ("program", "programname", "PROGRAM", "SYSLOG_IDENTIFIER", "logger", "logger_name", "log.logger",
                "name", "process.name", "app_name", "appname", "syslogtag"),
    "request_id": ("request_id", "requestId", "http.request.id", "request.id", "req_id"),
    "trace_id": ("trace_id", "traceId", "trace.id", "dd.trace_id"),
    "exception_type": ("exception.type", "error.type", "exc_type", "error_type"),
    "exception_message": ("exception.message", "error.message", "exc_message", "error_message"),
    "exception_stack": ("exception.stacktrace", "exception.stack_trace", "exception.stack", "error.stack_trace",
                        "error.stack", "stack_trace", "stacktrace", "exc_info", "stack"),
}
TEXT_LIMITS = {"host": 200, "service": 200, "program": 200, "request_id": 200, "trace_id": 200,
               "exception_type": 500}


class DocumentError(ValueError):
    """Why one document cannot be stored (the reply names the item or line)."""


@dataclass(frozen=True, slots=True)
class Window:
    """The accepted time range and the default time of a request."""

    now: dt.datetime
    earliest: dt.datetime
    latest: dt.datetime
    max_chars: int = 256 * 1024  # one entry's text, all fields (FIBERSTACK_LOGS_MAX_ENTRY_BYTES)


# Flat key -> (column, rank) and nested head -> [(dotted key, column, rank)]: one pass over a document's own
# keys finds every column's best key, instead of probing every accepted name (3x faster on rsyslog lines).
_FLAT: dict[str, tuple[str, int]] = {}
_NESTED: dict[str, list[tuple[str, str, int]]] = {}
for _column, _keys in FIELDS.items():
    for _rank, _key in enumerate(_keys):
        assert _key not in _FLAT, f"{_key} is accepted for two columns"
        _FLAT[_key] = (_column, _rank)
        if "." in _key:
            _NESTED.setdefault(_key.partition(".")[0], []).append((_key, _column, _rank))


def _lookup(doc: dict[str, Any], key: str) -> tuple[dict[str, Any], str] | None:
    """Where ``key`` lives: (the object holding it, its last part), flat or dotted through nested objects."""
    if key in doc:
        return doc, key
    head, dot, rest = key.partition(".")
    if dot and isinstance(doc.get(head), dict):
        return _lookup(doc[head], rest)
    return None


def _usable(value: Any) -> bool:
    """A scalar worth a column; objects stay in context (Filebeat's ``log: {file: ...}`` is no message)."""
    return value is not None and value != "" and not isinstance(value, dict | list)


def extract(doc: dict[str, Any]) -> dict[str, Any]:
    """Take each column's value out of ``doc``: the first accepted key (``FIELDS`` order) holding a scalar.
    What remains in ``doc`` is the context."""
    best: dict[str, tuple[int, str]] = {}
    for key, value in doc.items():
        hit = _FLAT.get(key)
        if hit is not None and _usable(value):
            column, rank = hit
            if column not in best or rank < best[column][0]:
                best[column] = (rank, key)
        elif isinstance(value, dict) and key in _NESTED:
            for dotted, column, rank in _NESTED[key]:
                found = _lookup(doc, dotted)
                if found is not None and _usable(found[0][found[1]]) and (column not in best or rank < best[column][0]):
                    best[column] = (rank, dotted)
    taken: dict[str, Any] = {}
    for column, (_, key) in best.items():
        found = _lookup(doc, key)
        if found is None:  # already taken through a shared parent (cannot happen with FIELDS as written)
            continue
        holder, last = found
        taken[column] = holder.pop(last)
        _prune(doc, key)
    return taken


def _prune(doc: dict[str, Any], key: str) -> None:
    """Drop the objects a dotted key emptied (``{"log": {}}`` after taking ``log.level``)."""
    head, dot, rest = key.partition(".")
    if dot and isinstance(doc.get(head), dict):
        _prune(doc[head], rest)
        if not doc[head]:
            del doc[head]


def parse_time(value: Any) -> dt.datetime:
    """ISO 8601 / RFC 3339 (``Z`` allowed), or epoch seconds, milliseconds or nanoseconds as a number."""
    if isinstance(value, bool):
        raise DocumentError(f"time {value!r} is not a timestamp")
    if isinstance(value, int | float) or (isinstance(value, str) and _is_number(value)):
        number = float(value)
        if number > 1e17:
            number /= 1e9
        elif number > 1e14:
            number /= 1e6
        elif number > 1e11:
            number /= 1e3
        try:
            return dt.datetime.fromtimestamp(number, tz=dt.UTC)
        except (OverflowError, OSError, ValueError):
            raise DocumentError(f"time {value!r} is out of range") from None
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise DocumentError(f"time {value[:64]!r} is not ISO 8601 or epoch seconds") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    raise DocumentError(f"time must be a string or a number, not {type(value).__name__}")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def clean(text: str) -> str:
    """Text PostgreSQL accepts: no NUL, no lone surrogates (JSON's ``\\ud800`` escapes decode to them)."""
    text = text.replace("\x00", "")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text


def _scrub(value: Any) -> Any:
    """A JSON value jsonb accepts: no NUL characters in keys or strings (jsonb refuses ``\\u0000``) and no
    non-finite numbers (JSON has none; Python's parser reads ``Infinity``/``NaN`` and jsonb refuses them
    back), which are kept as the strings ``"Infinity"``, ``"-Infinity"`` and ``"NaN"``."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, list):
        return [_scrub(item) for item in value]
    if isinstance(value, dict):
        return {str(key).replace("\x00", ""): _scrub(item) for key, item in value.items()}
    return value


def context_json(doc: Any) -> str:
    """``doc`` as JSON text for a jsonb column (see ``_scrub``); the common, clean case is dumped once."""
    try:
        text = json.dumps(doc, ensure_ascii=False, default=str, allow_nan=False)
        if "\\u0000" not in text:
            return clean(text)
    except ValueError:  # a non-finite float somewhere
        pass
    return clean(json.dumps(_scrub(doc), ensure_ascii=False, default=str))


def _text(column: str, value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value) if isinstance(value, list | dict) else str(value)
    text = clean(text)
    limit = TEXT_LIMITS.get(column)
    if limit and len(text) > limit:
        raise DocumentError(f"{column} is longer than {limit} characters")
    return text


def _exception(doc: dict[str, Any], row: dict[str, Any]) -> None:
    """``exception``/``error`` given as a plain string (a message or a stack) rather than an object."""
    for key in ("exception", "error", "exc"):
        value = doc.get(key)
        if isinstance(value, str) and value:
            doc.pop(key)
            if "\n" in value and not row["exception_stack"]:
                row["exception_stack"] = value
            elif not row["exception_message"]:
                row["exception_message"] = value


def to_row(doc: Any, window: Window, *, defaults: dict[str, str] | None = None) -> tuple[Any, ...]:
    """The ``storage.ENTRY_COLUMNS`` values (organization and host id left as None) of one document.
    ``doc`` is consumed. Raises DocumentError with a sentence naming the field."""
    if not isinstance(doc, dict):
        raise DocumentError(f"an entry must be a JSON object, not {type(doc).__name__}")
    row: dict[str, Any] = {}
    taken = extract(doc)
    raw_time = taken.get("time")
    when = window.now if raw_time is None else parse_time(raw_time)
    if not window.earliest <= when <= window.latest:
        raise DocumentError(f"time {when.isoformat()} is outside the accepted range "
                            f"{window.earliest.isoformat()} .. {window.latest.isoformat()}")
    raw_level = taken.get("level")
    level = levels.normalize(raw_level)
    if level is None:
        raise DocumentError(f"level {str(raw_level)[:40]!r} is not a known level: use one of "
                            f"{', '.join(levels.LEVELS)}")
    for column in ("message", "host", "service", "program", "request_id", "trace_id", "exception_type",
                   "exception_message", "exception_stack"):
        value = taken.get(column)
        row[column] = "" if value is None else _text(column, value)
    _exception(doc, row)
    for column, value in (defaults or {}).items():
        if not row.get(column):
            row[column] = value
    if not row["message"] and not row["exception_message"] and not row["exception_stack"]:
        raise DocumentError("the entry has no message (message, msg or log)")
    context = context_json(doc) if doc else "{}"
    size = len(context) + sum(map(len, row.values()))
    if size > window.max_chars:
        raise DocumentError(f"the entry is larger than {window.max_chars} characters")
    return (when, None, None, row["host"], row["service"], level, row["program"], row["message"],
            row["request_id"], row["trace_id"], row["exception_type"], row["exception_message"],
            row["exception_stack"], context)
