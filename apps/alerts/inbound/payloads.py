"""The bodies integrations accept, read into one shape (``InboundAlert``) for the lifecycle.

Alertmanager webhook v4 (https://prometheus.io/docs/alerting/latest/configuration/#webhook_config): each
element of ``alerts`` has ``status`` (firing | resolved), ``labels``, ``annotations``, ``startsAt``,
``endsAt``, ``generatorURL`` and ``fingerprint``. Alertmanager's fingerprint is a hash of the alert's whole
label set (severity included), so an alert is identified here by exactly those labels: the same
fingerprint is always the same FiberStack alert, and a rule that fires ``severity="warning"`` and
``severity="critical"`` at once stays two alerts, as in Alertmanager (resolving one never resolves the other).

Generic JSON: one object or a list of ``{"title", "severity", "labels", "status", "dedup_key",
"description"}``; only ``title`` is required (and not even that to resolve by ``dedup_key``). The dedup key
identifies the alert: without one, the title and labels are the key.

Severity: ``critical``/``warning`` and their usual synonyms map onto ours (``SEVERITY_NAMES``); a missing or
unknown severity is **critical** -- an alert nobody classified should page, not be quietly downgraded.

Problems are reported per item and field (``alerts[3].labels.severity``); good items are still applied."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from apps.alerts.choices import Severity
from apps.metrics.ingest.validation import forbidden_char, storable_text_problem

FIRING, RESOLVED = "firing", "resolved"
#: Source severities -> ours. Anything else (or none) is critical.
SEVERITY_NAMES: dict[str, str] = {
    **dict.fromkeys(("critical", "crit", "page", "error", "err", "high", "fatal", "emergency", "emerg", "alert",
                     "major", "disaster", "p1", "p2", "sev1", "sev2"), Severity.CRITICAL),
    **dict.fromkeys(("warning", "warn", "minor", "medium", "average", "low", "info", "informational", "notice",
                     "p3", "p4", "p5", "sev3", "sev4", "sev5"), Severity.WARNING),
}
MAX_LABEL_NAME_BYTES = 200
MAX_LABEL_VALUE_BYTES = 2048
MAX_SUMMARY_CHARS = 1000
MAX_DESCRIPTION_CHARS = 10_000
DEDUP_LABEL = "dedup_key"


def max_alerts() -> int:
    """Alerts per request (``FIBERSTACK_INTEGRATION_MAX_ALERTS``, default 1000)."""
    return int(getattr(settings, "FIBERSTACK_INTEGRATION_MAX_ALERTS", 1000))


def max_labels() -> int:
    return int(getattr(settings, "FIBERSTACK_INGEST_MAX_LABELS", 64))


@dataclass(frozen=True, slots=True)
class InboundAlert:
    """One alert as a source reported it. ``labels`` identify it (for generic alerts they include the
    ``dedup_key`` label); ``severity`` is ours (warning | critical)."""

    index: int
    firing: bool
    labels: dict[str, str]
    severity: str
    summary: str  # "" when the item gave none (a resolve by dedup key): the alert keeps its text
    description: str | None  # None when the item gave none
    dedup_key: str = ""


@dataclass(frozen=True, slots=True)
class ItemError:
    """A bad item: which one (its index in the body) and which field."""

    item: int
    field: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"item": self.item, "field": self.field, "error": f"{self.field}: {self.message}"}


class BodyError(Exception):
    """The body as a whole is unusable (not JSON, no ``alerts`` list, too many alerts): nothing applied."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(slots=True)
class Parsed:
    alerts: list[InboundAlert] = field(default_factory=list)
    errors: list[ItemError] = field(default_factory=list)


class _Bad(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def load_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except UnicodeDecodeError:
        raise BodyError("body", "is not UTF-8.") from None
    except ValueError as exc:
        raise BodyError("body", f"is not JSON ({exc}).") from None


def map_severity(value: Any, where: str) -> str:
    if value is None or value == "":
        return Severity.CRITICAL
    if not isinstance(value, str):
        raise _Bad(where, "must be a string.")
    return SEVERITY_NAMES.get(value.strip().lower(), Severity.CRITICAL)


def _utf8(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _labels(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _Bad(where, "must be an object of label names to string values.")
    if len(value) > max_labels():
        raise _Bad(where, f"has {len(value)} labels; at most {max_labels()} are accepted.")
    labels: dict[str, str] = {}
    for name, item in value.items():
        if not name or forbidden_char(name) or _utf8(name) > MAX_LABEL_NAME_BYTES:
            raise _Bad(f"{where}.{name}" if name else where,
                       f"is not a label name (1-{MAX_LABEL_NAME_BYTES} bytes, no control characters).")
        if not isinstance(item, str):
            raise _Bad(f"{where}.{name}", "must be a string.")
        bad = forbidden_char(item)
        if bad:
            raise _Bad(f"{where}.{name}", f"the value {bad}.")
        if _utf8(item) > MAX_LABEL_VALUE_BYTES:
            raise _Bad(f"{where}.{name}", f"is longer than {MAX_LABEL_VALUE_BYTES} bytes.")
        labels[name] = item
    return labels


def _text(value: Any, where: str, limit: int) -> str:
    """Free text: must be a string that PostgreSQL can store; cut at ``limit`` characters."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _Bad(where, "must be a string.")
    bad = storable_text_problem(value)
    if bad:
        raise _Bad(where, f"the text {bad}.")
    return value[:limit]


def _status(value: Any, where: str, default: str | None = None) -> bool:
    if value is None and default is not None:
        value = default
    if value not in (FIRING, RESOLVED):
        raise _Bad(where, f"must be \"firing\" or \"resolved\", not {json.dumps(value)[:50]}.")
    return value == FIRING


def _timestamp(value: Any, where: str) -> None:
    """Checked (a malformed time is a broken sender), not used: FiberStack times transitions by receipt, so
    reminders and escalation waits count from when it learnt of the alert."""
    if value is None or value == "":
        return
    if not isinstance(value, str):
        raise _Bad(where, "must be an RFC 3339 time string.")
    try:
        dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _Bad(where, f"{value[:50]!r} is not an RFC 3339 time.") from None


def _items(data: Any, key: str) -> list[Any]:
    if len(data) > max_alerts():
        raise BodyError(key, f"has {len(data)} alerts; at most {max_alerts()} per request "
                             "(FIBERSTACK_INTEGRATION_MAX_ALERTS).")
    return list(data)


def _describe(description: str, extras: Mapping[str, str]) -> str:
    """The description, then the source's other annotations (runbook_url, dashboard ...) one per line: the
    notification body carries only summary and description."""
    lines = [f"{name}: {value}" for name, value in sorted(extras.items()) if value]
    return "\n".join(part for part in (description, "\n".join(lines)) if part)[:MAX_DESCRIPTION_CHARS]


def parse_alertmanager(body: bytes) -> Parsed:
    """Read an Alertmanager webhook v4 body."""
    data = load_json(body)
    if not isinstance(data, Mapping):
        raise BodyError("body", "must be a JSON object (the Alertmanager webhook v4 body).")
    version = data.get("version")
    if version is not None and str(version) != "4":
        raise BodyError("version", f"{json.dumps(version)[:20]} is not supported; this door reads version 4.")
    alerts = data.get("alerts")
    if not isinstance(alerts, list):
        raise BodyError("alerts", "must be a list of alerts.")
    parsed = Parsed()
    for index, item in enumerate(_items(alerts, "alerts")):
        where = f"alerts[{index}]"
        try:
            parsed.alerts.append(_alertmanager_alert(index, item, where))
        except _Bad as exc:
            parsed.errors.append(ItemError(index, exc.field, exc.message))
    return parsed


def _alertmanager_alert(index: int, item: Any, where: str) -> InboundAlert:
    if not isinstance(item, Mapping):
        raise _Bad(where, "must be an object.")
    firing = _status(item.get("status"), f"{where}.status")
    labels = _labels(item.get("labels"), f"{where}.labels")
    if not labels:
        raise _Bad(f"{where}.labels", "must name at least one label (alertname).")
    annotations = _labels(item.get("annotations"), f"{where}.annotations")
    severity = map_severity(labels.get("severity"), f"{where}.labels.severity")
    for name in ("startsAt", "endsAt"):
        _timestamp(item.get(name), f"{where}.{name}")
    for name in ("fingerprint", "generatorURL"):
        if item.get(name) is not None and not isinstance(item.get(name), str):
            raise _Bad(f"{where}.{name}", "must be a string.")
    extras = {k: v for k, v in annotations.items() if k not in ("summary", "description", "message")}
    if item.get("generatorURL"):
        extras["source"] = item["generatorURL"]
    summary = annotations.get("summary") or annotations.get("message") or _default_summary(labels)
    description = annotations.get("description") or (annotations.get("message", "") if "summary" in annotations
                                                      else "")
    return InboundAlert(index=index, firing=firing, labels=labels, severity=severity,
                        summary=summary[:MAX_SUMMARY_CHARS], description=_describe(description, extras))


def _default_summary(labels: Mapping[str, str]) -> str:
    name = labels.get("alertname", "alert")
    where = labels.get("instance") or labels.get("host") or labels.get("job") or ""
    return f"{name} on {where}" if where else name


def parse_generic(body: bytes) -> Parsed:
    """Read a generic body: one alert object, or a list of them."""
    data = load_json(body)
    items = [data] if isinstance(data, Mapping) else data
    if not isinstance(items, list):
        raise BodyError("body", "must be an alert object or a list of alert objects.")
    parsed = Parsed()
    for index, item in enumerate(_items(items, "body")):
        where = f"[{index}]" if isinstance(data, list) else "body"
        try:
            parsed.alerts.append(_generic_alert(index, item, where))
        except _Bad as exc:
            parsed.errors.append(ItemError(index, exc.field, exc.message))
    return parsed


def _generic_alert(index: int, item: Any, where: str) -> InboundAlert:
    if not isinstance(item, Mapping):
        raise _Bad(where, "must be an object.")
    firing = _status(item.get("status"), f"{where}.status", default=FIRING)
    dedup_key = _text(item.get("dedup_key"), f"{where}.dedup_key", 10_000)
    if dedup_key and (forbidden_char(dedup_key) or _utf8(dedup_key) > MAX_LABEL_VALUE_BYTES):
        raise _Bad(f"{where}.dedup_key", f"must be at most {MAX_LABEL_VALUE_BYTES} bytes without control "
                                         "characters.")
    title = _text(item.get("title"), f"{where}.title", MAX_SUMMARY_CHARS).strip()
    if not title and (firing or not dedup_key):
        raise _Bad(f"{where}.title", "is required (a resolve may give only the dedup_key).")
    if forbidden_char(title):
        raise _Bad(f"{where}.title", f"the value {forbidden_char(title)}.")
    labels = _labels(item.get("labels"), f"{where}.labels")
    labels.pop(DEDUP_LABEL, None)
    severity = map_severity(item.get("severity", labels.get("severity")), f"{where}.severity")
    labels.pop("severity", None)
    labels.setdefault("alertname", title[:200] or "alert")
    description = (_text(item.get("description"), f"{where}.description", MAX_DESCRIPTION_CHARS)
                   if "description" in item else None)
    if not dedup_key:
        dedup_key = hashlib.sha256(json.dumps([title, labels], sort_keys=True).encode()).hexdigest()[:32]
    return InboundAlert(index=index, firing=firing, labels={**labels, DEDUP_LABEL: dedup_key}, severity=severity,
                        summary=title, description=description, dedup_key=dedup_key)
