"""What notifications say: the Alertmanager webhook v4 body (the payload of every outbox row, sent as-is
to webhooks, rendered to text for Slack and email) and the rule's summary/description templates.

Receivers written for Alertmanager must work unmodified, so the body follows its shape field for field:
https://prometheus.io/docs/alerting/latest/configuration/#webhook_config."""

from __future__ import annotations

import datetime as dt
import logging
import string
from collections.abc import Mapping, Sequence
from typing import Any

from django.conf import settings

from apps.alerts.models import Alert, AlertGroup

logger = logging.getLogger(__name__)

#: Alertmanager's "not ended yet" endsAt (Go's zero time).
ZERO_TIME = "0001-01-01T00:00:00Z"
FIRING, RESOLVED = "firing", "resolved"


def rfc3339(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def external_url(organization: Any) -> str:
    return f"{settings.FIBERSTACK_BASE_URL.rstrip('/')}/{organization.slug}/alerts/"


def alert_url(alert: Alert) -> str:
    """The alert's page, Alertmanager's ``generatorURL``."""
    return f"{external_url(alert.organization)}{alert.public_id}/"


def group_key(rule_name: str, group_labels: Mapping[str, str]) -> str:
    """Alertmanager's ``groupKey`` shape (route matchers, then the group's labels)."""
    labels = {"alertname": rule_name, **group_labels}
    inner = ",".join(f'{name}="{value}"' for name, value in sorted(labels.items()))
    return f"{{}}:{{{inner}}}"


def alert_entry(alert: Alert, status: str, at: dt.datetime) -> dict[str, Any]:
    """One element of ``alerts[]``. A resolved entry ends when the alert resolved (``at`` for one whose
    row no longer says, e.g. removed from the group)."""
    started = alert.started_at or alert.created_at
    ends = rfc3339(alert.resolved_at or at) if status == RESOLVED else ZERO_TIME
    return {
        "status": status,
        "labels": dict(alert.labels),
        "annotations": {"summary": alert.summary, "description": alert.description},
        "startsAt": rfc3339(started),
        "endsAt": ends,
        "generatorURL": alert_url(alert),
        "fingerprint": alert.fingerprint,
    }


def _common(dicts: Sequence[Mapping[str, str]]) -> dict[str, str]:
    if not dicts:
        return {}
    first = dicts[0]
    return {key: value for key, value in first.items() if all(d.get(key) == value for d in dicts[1:])}


def group_body(*, group: AlertGroup, firing: Sequence[Alert], resolved: Sequence[Alert],
               at: dt.datetime) -> dict[str, Any]:
    """The body for one group change, without ``receiver`` (:func:`for_channel` adds it). ``status`` is
    "firing" while any alert of the message fires, "resolved" once none does (Alertmanager's rule)."""
    entries = [alert_entry(a, FIRING, at) for a in firing] + [alert_entry(a, RESOLVED, at) for a in resolved]
    rule = group.rule
    return {
        "version": "4",
        "groupKey": group_key(rule.name, group.group_labels),
        "truncatedAlerts": 0,
        "status": FIRING if firing else RESOLVED,
        "receiver": "",
        "groupLabels": {"alertname": rule.name, **group.group_labels},
        "commonLabels": _common([e["labels"] for e in entries]),
        "commonAnnotations": _common([e["annotations"] for e in entries]),
        "externalURL": external_url(group.organization),
        "alerts": entries,
    }


def for_channel(body: Mapping[str, Any], channel_name: str) -> dict[str, Any]:
    return {**body, "receiver": channel_name}


class _SafeFormatter(string.Formatter):
    """``str.format`` limited to plain names and one ``[key]`` into ``labels``: no attribute access, so
    a template (written by any editor) cannot walk into Python objects."""

    def get_field(self, field_name: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
        name, _, rest = field_name.partition("[")
        if "." in field_name or name not in kwargs:
            raise KeyError(field_name)
        value = kwargs[name]
        if rest:
            key = rest.removesuffix("]")
            if "[" in key or "]" in key or not isinstance(value, Mapping):
                raise KeyError(field_name)
            value = value.get(key.strip("'\""), "")
        return value, name


_FORMATTER = _SafeFormatter()


def render_template(template: str, *, value: float | None, threshold: float | None, host: str,
                    labels: Mapping[str, str]) -> str:
    """Fill ``{value}``, ``{threshold}``, ``{host}`` and ``{labels[name]}`` (format specs allowed:
    ``{value:.1f}``). A broken template never raises: it is returned as written, so the alert still
    fires with a readable, if unfilled, text."""
    if not template:
        return ""
    try:
        return _FORMATTER.format(template, value=value, threshold=threshold, host=host, labels=dict(labels))
    except Exception:  # any template error: keep the text, never fail the evaluation
        logger.info("alert template could not be rendered: %r", template[:200])
        return template
