"""FiberStack's own JSON formats: the metrics batch, the probe payload and the agent payload.

All three are read with the stdlib ``json`` module (orjson is not a dependency). ``NaN``/``Infinity``
literals, which Python clients emit, are accepted and follow ``options.nan_policy``; booleans are never
numbers. Locations: ``item N`` is the 0-based index in a top-level array; a problem with one field is
located as ``item N, field 'x'`` (or ``field 'x'`` when the body is a single object).

**Metrics batch** (``parse_metrics_json``): ``[{...}, ...]`` or ``{"metrics": [{...}, ...]}``, each item
``{"name", "value", "time", "labels", "host", "unit"}``. ``name`` (sanitized, see ``naming``) and
``value`` (a number) are required; ``time`` is epoch seconds (int or float) or an RFC 3339 string with
an offset, defaulting to now; ``labels`` is an object of strings; ``host`` becomes the label ``host``
(and wins over ``labels.host``); ``unit`` goes to ``ParseResult.units``.

**Probe payload** (``parse_probe_payload``): one object or an array of objects from a network probe::

    {"node_id": "<uuid>", "country": "DE", "region": "eu-central", "timestamp": "2026-11-21T10:00:00Z",
     "latency_ms": 12.5, "uptime_pct": 99.9, "packet_loss": 0.1, "metadata": {...}}

``node_id`` (UUID), ``country`` (``^[A-Z]{2}$``), ``region`` and ``timestamp`` (ISO 8601; without an
offset it is taken as UTC, as ``datetime.utcnow().isoformat()`` clients send it) are required; of
``latency_ms`` (0-10000), ``uptime_pct`` (0-100) and ``packet_loss`` (0-100) at least one. A probe with
any invalid field is rejected whole, with one error per bad field. Each number becomes the series
``probe_<field>`` labelled ``node_id``, ``country``, ``region``; the probe itself is reported in
``ParseResult.hosts[node_id]`` (country, region, metadata, last_seen_us) so the ingest service can
register or update the Host in the same request.

**Agent payload** (``parse_agent_payload``): one host's report, an object of numbers, nested as the
agent likes::

    {"timestamp": "...", "labels": {"env": "prod"}, "load1": 0.5,
     "cpu": {"percent": 12.5, "per_core": [10.0, 15.0]}, "memory": {"used": 1, "total": 2}}

Nested keys join with ``_`` (``cpu_percent``, ``memory_used``; sanitized, no prefix added); the
elements of an array get the label ``index`` (``cpu_per_core{index="1"}``); strings, booleans and
nulls are skipped and counted in ``skipped['non_numeric']``. ``timestamp`` (or ``time``) and
``labels`` are optional and apply to every metric; the label ``host`` is always the authenticated host.
``host_info`` (optional, not metrics) describes the machine: ``agent_version`` and the rest (``hardware``,
``os``...) update the Host's ``agent_version`` / ``hardware_info`` (see ``agent_host_info``).
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from apps.metrics.ingest.naming import NamingError, intern_key, make_labels, make_metric_name, sanitize_label_name
from apps.metrics.ingest.types import ParseOptions, ParseResult, PayloadError, SampleSink, SeriesKey, SeriesLimits
from apps.metrics.ingest.validation import (
    count_problem,
    host_problem,
    json_problem,
    labels_problem,
    unit_problem,
    use_limits,
    value_problem,
)

__all__ = [
    "load_json",
    "parse_agent_payload",
    "parse_metrics_json",
    "parse_probe_payload",
    "parse_timestamp",
]

#: Deeper agent payloads are almost certainly not metrics; refusing them bounds the work per request.
MAX_AGENT_DEPTH = 8

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)
_TIMESTAMP_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))?(?:([Zz])|([+-])(\d{2}):?(\d{2}))?",
    re.ASCII,
)
_UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_COUNTRY_RE = re.compile(r"[A-Z]{2}")
# Largest plausible epoch seconds (year 5138); bigger numbers are usually milliseconds by mistake.
_MAX_EPOCH_S = 1e11

#: Probe numeric fields: (series name, unit, lowest, highest).
PROBE_METRICS: dict[str, tuple[str, str, float, float]] = {
    "latency_ms": ("probe_latency_ms", "ms", 0.0, 10_000.0),
    "uptime_pct": ("probe_uptime_pct", "percent", 0.0, 100.0),
    "packet_loss": ("probe_packet_loss", "percent", 0.0, 100.0),
}


class _FieldError(Exception):
    """A field that fails validation; ``args[0]`` is the field name, ``args[1]`` the reason."""


def load_json(body: bytes | str) -> Any:
    """``json.loads`` that turns every way a body can be unreadable into PayloadError.

    Bytes that are not UTF-8 inside strings do not condemn the whole body: they are decoded as lone
    surrogates, which ``validation`` rejects in the one series (item, field) that carries them."""
    try:
        try:
            return json.loads(body)
        except UnicodeDecodeError:
            if not isinstance(body, bytes | bytearray):
                raise
            return json.loads(bytes(body).decode("utf-8", "surrogateescape"))
    except RecursionError:
        raise PayloadError("JSON is nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        raise PayloadError(f"body is not valid JSON: {exc}") from None


def json_type(value: object) -> str:
    """The JSON name of a decoded value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def parse_timestamp(text: str, *, require_offset: bool = True) -> int:
    """RFC 3339 / ISO 8601 date-time -> epoch microseconds; raises ValueError with a readable reason.

    Written out instead of ``datetime.fromisoformat`` because that also accepts dates without a time and
    other ISO shapes that no client means as an instant; fractions finer than 1 us are truncated.
    """
    match = _TIMESTAMP_RE.fullmatch(text)
    if match is None:
        raise ValueError(f"{text[:64]!r} is not an RFC 3339 timestamp such as '2026-11-21T10:00:00Z'")
    year, month, day, hour, minute, second, fraction, zulu, sign, off_h, off_m = match.groups()
    if not zulu and not sign and require_offset:
        raise ValueError(f"{text!r} has no UTC offset; add 'Z' or '+hh:mm'")
    try:
        moment = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=UTC)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a valid date-time: {exc}") from None
    t_us = (moment - _EPOCH) // _ONE_US
    if fraction:
        t_us += int(fraction[:6].ljust(6, "0"))
    if sign:
        if int(off_h) > 23 or int(off_m) > 59:
            raise ValueError(f"{text!r} has an invalid UTC offset")
        offset_us = (int(off_h) * 3600 + int(off_m) * 60) * 1_000_000
        t_us += -offset_us if sign == "+" else offset_us
    return t_us


def _time_us(value: object, now_us: int, *, require_offset: bool) -> int:
    """A ``time`` field (epoch seconds or timestamp string, None = now) as epoch microseconds."""
    if value is None:
        return now_us
    if isinstance(value, str):
        return parse_timestamp(value, require_offset=require_offset)
    if type(value) in (int, float):
        # An integer beyond a double's range (JSON has no limit) is as wrong as a huge float.
        seconds = float(value) if type(value) is float or -_MAX_EPOCH_S <= value <= _MAX_EPOCH_S else math.inf  # type: ignore[operator]
        if not math.isfinite(seconds) or abs(seconds) > _MAX_EPOCH_S:
            shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:40] + "..."
            raise ValueError(f"{shown} is not epoch seconds (milliseconds or nanoseconds by mistake?)")
        return round(seconds * 1_000_000)
    raise ValueError(f"must be epoch seconds or an RFC 3339 string, not {json_type(value)}")


def _number(value: object) -> float:
    """A JSON number as float; raises ValueError for anything else (booleans included)."""
    if type(value) not in (int, float):
        raise ValueError(f"must be a number, not {json_type(value)}")
    try:
        return float(value)  # type: ignore[arg-type]
    except OverflowError:
        raise ValueError("is out of the range of a 64-bit float") from None


def _label_pairs(value: object) -> list[tuple[str, str]]:
    if not isinstance(value, dict):
        raise ValueError(f"must be an object of strings, not {json_type(value)}")
    for name, label_value in value.items():
        if not isinstance(label_value, str):
            raise ValueError(f"label {name!r} must be a string, not {json_type(label_value)}")
    return list(value.items())


def _items(data: object, *, allow_object: bool, wrapper: str | None = None) -> list[tuple[str, object]]:
    """Top-level shape -> [(location prefix, item)]; an unusable shape is a PayloadError."""
    if wrapper and isinstance(data, dict) and wrapper in data:
        data = data[wrapper]
        if not isinstance(data, list):
            raise PayloadError(f"field '{wrapper}' must be an array", location=f"field '{wrapper}'")
    if isinstance(data, list):
        return [(f"item {index}", item) for index, item in enumerate(data)]
    if allow_object and isinstance(data, dict):
        return [("", data)]
    shape = f"an array or an object with a '{wrapper}' array" if wrapper else "an object or an array of objects"
    raise PayloadError(f"expected {shape}, not {json_type(data)}")


def _at(prefix: str, field: str) -> str:
    return f"{prefix}, field '{field}'" if prefix else f"field '{field}'"


# ---------------------------------------------------------------------------------------------------------
# Metrics batch


def parse_metrics_json(body: bytes | str, options: ParseOptions) -> ParseResult:
    """Parse a FiberStack JSON metrics batch; bad items become errors, good ones are kept."""
    use_limits(options.limits)
    result = ParseResult()
    sink = SampleSink(result, options)
    label_cache: dict[tuple[object, ...], tuple[tuple[str, str], ...]] = {}
    units_ok: set[object] = set()
    for where, item in _items(load_json(body), allow_object=False, wrapper="metrics"):
        if not isinstance(item, dict):
            sink.error(where, f"expected an object, not {json_type(item)}")
            continue
        try:
            key, t_us, value, unit = _metric_item(item, options, label_cache, units_ok)
        except _FieldError as exc:
            sink.error(_at(where, exc.args[0]), exc.args[1])
            continue
        if unit is not None:
            result.units[key] = unit
        if not sink.add(key, t_us, value, where):
            break
    return result


def _metric_item(
    item: dict[str, Any], options: ParseOptions, label_cache: dict[tuple[object, ...], tuple[tuple[str, str], ...]],
    units_ok: set[object],
) -> tuple[SeriesKey, int, float, str | None]:
    name = item.get("name")
    if not isinstance(name, str):
        raise _FieldError("name", "is required and must be a string")
    try:
        name = make_metric_name(name, options.limits)
    except NamingError as exc:
        raise _FieldError("name", str(exc)) from None
    if "value" not in item:
        raise _FieldError("value", "is required")
    try:
        value = _number(item["value"])
    except ValueError as exc:
        raise _FieldError("value", str(exc)) from None
    try:
        t_us = _time_us(item.get("time"), options.now_us, require_offset=True)
    except ValueError as exc:
        raise _FieldError("time", str(exc)) from None
    host = item.get("host")
    raw_labels = item.get("labels")
    cache_key = (host, *raw_labels.items()) if isinstance(raw_labels, dict) else (host, raw_labels)
    try:
        labels = label_cache.get(cache_key)  # type: ignore[arg-type]
    except TypeError:  # unhashable label values (arrays, objects): validation below explains
        labels = None
    if labels is None:  # only valid label sets are cached: each distinct one is validated once per request
        if host is not None:
            if not isinstance(host, str):
                raise _FieldError("host", f"must be a string, not {json_type(host)}")
            problem = host_problem(host, options.limits)
            if problem:
                raise _FieldError("host", problem)
        try:
            pairs = _label_pairs(raw_labels) if raw_labels is not None else []
        except ValueError as exc:
            raise _FieldError("labels", str(exc)) from None
        if host is not None:
            pairs = [(k, v) for k, v in pairs if k != "host"]
            pairs.append(("host", host))
        try:
            labels = make_labels(pairs, options.limits)
        except NamingError as exc:
            raise _FieldError("labels", str(exc)) from None
        label_cache[cache_key] = labels
    unit = item.get("unit")
    if unit is not None and not (isinstance(unit, str) and unit in units_ok):
        if not isinstance(unit, str):
            raise _FieldError("unit", f"must be a string, not {json_type(unit)}")
        problem = unit_problem(unit, options.limits)
        if problem:
            raise _FieldError("unit", problem)
        units_ok.add(unit)
    return intern_key((name, labels)), t_us, value, unit or None


# ---------------------------------------------------------------------------------------------------------
# Probe payload


def parse_probe_payload(body: bytes | str, options: ParseOptions) -> ParseResult:
    """Parse one probe report (or an array of them) into probe_* series plus host inventory."""
    result = ParseResult()
    sink = SampleSink(result, options)
    for where, probe in _items(load_json(body), allow_object=True):
        if not isinstance(probe, dict):
            sink.error(where, f"expected an object, not {json_type(probe)}")
            continue
        problems: list[tuple[str, str]] = []
        fields = _probe_fields(probe, problems, options.limits)
        if problems:
            for field, reason in problems:
                sink.error(_at(where, field), reason)
            continue
        node_id, country, region, t_us, metadata, numbers = fields  # type: ignore[misc]
        window_problem = options.time_problem(t_us)
        if window_problem:
            sink.error(_at(where, "timestamp"), window_problem)
            continue
        labels = (("country", country), ("node_id", node_id), ("region", region))
        for field, value in numbers:
            name, unit, _low, _high = PROBE_METRICS[field]
            key = intern_key((name, labels))
            stored = len(result)
            if not sink.add(key, t_us, value, _at(where, field)):
                return result
            if len(result) > stored:
                result.units[key] = unit
        host = result.hosts.get(node_id)
        if host is None or t_us >= host["last_seen_us"]:  # type: ignore[operator]
            result.hosts[node_id] = {"country": country, "region": region, "last_seen_us": t_us}
            if metadata is not None:
                result.hosts[node_id]["metadata"] = metadata
    return result


def _probe_fields(probe: dict[str, Any], problems: list[tuple[str, str]], limits: SeriesLimits) -> tuple[object, ...]:
    """Validate every field of one probe, collecting all problems so the client can fix them at once."""
    node_id = probe.get("node_id")
    if not isinstance(node_id, str) or not _UUID_RE.fullmatch(node_id):
        problems.append(("node_id", "is required and must be a UUID such as '9f0c...-....-....-....-............'"))
    else:
        node_id = node_id.lower()
    country = probe.get("country")
    if not isinstance(country, str) or not _COUNTRY_RE.fullmatch(country):
        problems.append(("country", "is required and must match ^[A-Z]{2}$"))
    region = probe.get("region")
    if not isinstance(region, str) or not region.strip():
        problems.append(("region", "is required and must be a non-empty string"))
    else:
        problem = value_problem(region, limits)
        if problem:
            problems.append(("region", problem))
    t_us = 0
    timestamp = probe.get("timestamp")
    if not isinstance(timestamp, str):
        problems.append(("timestamp", "is required and must be an ISO 8601 string"))
    else:
        try:
            t_us = parse_timestamp(timestamp, require_offset=False)
        except ValueError as exc:
            problems.append(("timestamp", str(exc)))
    numbers: list[tuple[str, float]] = []
    present = 0
    for field, (_name, _unit, low, high) in PROBE_METRICS.items():
        raw = probe.get(field)
        if raw is None:
            continue
        present += 1
        try:
            value = _number(raw)
        except ValueError as exc:
            problems.append((field, str(exc)))
            continue
        if not math.isfinite(value):
            numbers.append((field, value))  # SampleSink applies the NaN policy
        elif not low <= value <= high:
            problems.append((field, f"must be between {low:g} and {high:g}, not {value:g}"))
        else:
            numbers.append((field, value))
    if not present:
        problems.append(("latency_ms", "at least one of latency_ms, uptime_pct, packet_loss is required"))
    metadata = probe.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        problems.append(("metadata", f"must be an object, not {json_type(metadata)}"))
    return node_id, country, region, t_us, metadata, numbers


# ---------------------------------------------------------------------------------------------------------
# Agent payload

_AGENT_RESERVED = frozenset({"timestamp", "time", "labels", "host_info"})
#: Upper bound on the encoded ``host_info`` object: inventory facts, not a place to ship files.
HOST_INFO_MAX_BYTES = 16_384
HOST_INFO_MAX_DEPTH = 16


def agent_host_info(info: object) -> dict[str, object]:
    """``host_info`` of an agent payload -> Host attributes for ``resolve_hosts``.

    ``{"agent_version": "1.2", "hardware": {"cpu_logical": 8}, "os": "linux", "kernel": "6.1"}`` becomes
    ``{"agent_version": "1.2", "hardware_info": {"cpu_logical": 8, "os": "linux", "kernel": "6.1"}}``:
    ``agent_version`` is its own Host field; ``hardware`` and every other key are facts about the machine
    and land in ``hardware_info`` (replacing it: the agent is the authority on its own machine). Other
    inventory fields (environment, region...) stay with the admins. Raises ValueError with the reason."""
    if not isinstance(info, dict):
        raise ValueError(f"expected an object, not {json_type(info)}")
    problem = json_problem(info, HOST_INFO_MAX_DEPTH)
    if problem:
        raise ValueError(problem)
    if len(json.dumps(info, default=str)) > HOST_INFO_MAX_BYTES:
        raise ValueError(f"larger than {HOST_INFO_MAX_BYTES} bytes encoded")
    attributes: dict[str, object] = {}
    version = info.get("agent_version")
    if version is not None:
        if not isinstance(version, str):
            raise ValueError(f"agent_version must be a string, not {json_type(version)}")
        attributes["agent_version"] = version
    hardware = info.get("hardware")
    if hardware is not None and not isinstance(hardware, dict):
        raise ValueError(f"hardware must be an object, not {json_type(hardware)}")
    facts = {key: value for key, value in info.items() if key not in ("agent_version", "hardware")}
    facts.update(hardware or {})
    if facts:
        attributes["hardware_info"] = facts
    return attributes


def parse_agent_payload(host: str, body: bytes | str, options: ParseOptions) -> ParseResult:
    """Flatten one host's agent report into series labelled with that host."""
    use_limits(options.limits)
    limits = options.limits
    problem = host_problem(host, limits) if isinstance(host, str) else "host must be a string"
    if problem:
        raise PayloadError(problem, location="host")
    data = load_json(body)
    if not isinstance(data, dict):
        raise PayloadError(f"expected a JSON object, not {json_type(data)}")
    result = ParseResult()
    sink = SampleSink(result, options)

    time_field = "timestamp" if "timestamp" in data else "time"
    try:
        t_us = _time_us(data.get(time_field), options.now_us, require_offset=False)
    except ValueError as exc:
        sink.error(f"field '{time_field}'", str(exc))
        return result
    try:
        base: dict[str, str] = {}
        if data.get("labels") is not None:
            for name, value in _label_pairs(data["labels"]):
                base[sanitize_label_name(name)] = value
        base["host"] = host
        walker = _AgentWalker(result, sink, t_us, base, limits)
        walker.labels(None)  # the labels every metric shares: a problem there is the payload's
    except ValueError as exc:  # NamingError is a ValueError
        sink.error("field 'labels'", str(exc))
        return result
    if data.get("host_info") is not None:
        try:
            result.hosts[host] = agent_host_info(data["host_info"])
        except ValueError as exc:  # the metrics are still stored; the 400 names the field
            sink.error("field 'host_info'", str(exc))
    for key, value in data.items():
        if key not in _AGENT_RESERVED and not walker.walk(value, [key], key, None, 1):
            break
    return result


class _AgentWalker:
    """Depth-first flattening of an agent payload, caching the label tuple per array index."""

    __slots__ = ("base", "by_index", "limits", "result", "seen", "sink", "t_us")

    def __init__(self, result: ParseResult, sink: SampleSink, t_us: int, base: dict[str, str],
                 limits: SeriesLimits) -> None:
        self.result = result
        self.sink = sink
        self.t_us = t_us
        self.base = base
        self.limits = limits
        self.by_index: dict[int | None, tuple[tuple[str, str], ...]] = {}
        self.seen: set[SeriesKey] = set()

    def labels(self, index: int | None) -> tuple[tuple[str, str], ...]:
        """The label set of the metrics at array position ``index``; raises NamingError when it cannot be
        stored (checked once per position)."""
        labels = self.by_index.get(index)
        if labels is None:
            pairs = dict(self.base)
            if index is not None:
                pairs["index"] = str(index)
            labels = tuple(sorted((k, v) for k, v in pairs.items() if v))
            # The base set is validated in full; an array position only adds the harmless index="N".
            problem = labels_problem(labels, self.limits) if index is None else count_problem(labels, self.limits)
            if problem:
                raise NamingError(problem)
            self.by_index[index] = labels
        return labels

    def walk(self, value: object, parts: list[str], path: str, index: int | None, depth: int) -> bool:
        """Emit the numbers under ``value``; returns False once the sample limit stops parsing."""
        if depth > MAX_AGENT_DEPTH:
            self.sink.error(f"field '{path}'", f"nested deeper than {MAX_AGENT_DEPTH} levels")
            return True
        kind = type(value)
        if kind is int or kind is float:
            try:
                name = make_metric_name("_".join(parts), self.limits)
                number = _number(value)
                key = intern_key((name, self.labels(index)))
            except ValueError as exc:  # NamingError included
                self.sink.error(f"field '{path}'", str(exc))
                return True
            if key in self.seen:
                self.sink.error(f"field '{path}'", f"duplicate series '{name}' (names are joined with '_')")
                return True
            self.seen.add(key)
            return self.sink.add(key, self.t_us, number, f"field '{path}'")
        if kind is dict:
            for key, child in value.items():  # type: ignore[attr-defined]
                if not self.walk(child, [*parts, key], f"{path}.{key}", index, depth + 1):
                    return False
            return True
        if kind is list:
            if index is not None:
                self.result.skipped["nested_arrays"] += 1
                return True
            for position, child in enumerate(value):  # type: ignore[arg-type]
                if not self.walk(child, parts, f"{path}[{position}]", position, depth + 1):
                    return False
            return True
        self.result.skipped["non_numeric"] += 1
        return True
