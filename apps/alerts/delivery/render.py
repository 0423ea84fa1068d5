"""Human-readable text from an Alertmanager webhook v4 payload, for the email and Slack transports.

Only the payload is read (never the database), so a retry renders exactly what the first try did."""

from __future__ import annotations

from typing import Any

#: Labels that say what an alert is; the rest of the labels say where it is.
_NAME_LABEL = "alertname"
_SEVERITY_LABEL = "severity"


def alerts_of(payload: dict[str, Any]) -> list[dict[str, Any]]:
    return [a for a in payload.get("alerts") or [] if isinstance(a, dict)]


def firing_count(payload: dict[str, Any]) -> int:
    return sum(1 for a in alerts_of(payload) if a.get("status") == "firing")


def alert_names(payload: dict[str, Any]) -> list[str]:
    """The distinct alertname labels, in payload order (the group labels' name first when there is one)."""
    names: list[str] = []
    for source in [payload.get("groupLabels") or {}, payload.get("commonLabels") or {},
                   *[a.get("labels") or {} for a in alerts_of(payload)]]:
        name = source.get(_NAME_LABEL)
        if name and name not in names:
            names.append(str(name))
    return names


def severity(payload: dict[str, Any]) -> str:
    """The common severity, else the worst one among the alerts ("" when none says)."""
    common = (payload.get("commonLabels") or {}).get(_SEVERITY_LABEL)
    if common:
        return str(common)
    seen = {str((a.get("labels") or {}).get(_SEVERITY_LABEL, "")) for a in alerts_of(payload)}
    for level in ("critical", "warning", "info"):
        if level in seen:
            return level
    return next((s for s in sorted(seen) if s), "")


def status_tag(payload: dict[str, Any]) -> str:
    """Alertmanager's subject prefix: "FIRING:2" or "RESOLVED"."""
    status = str(payload.get("status") or "firing")
    return f"FIRING:{firing_count(payload)}" if status == "firing" else status.upper()


def _where(payload: dict[str, Any]) -> str:
    """Common labels other than the name and severity, as "k=v, …" (what the alerts share besides their name)."""
    common = payload.get("commonLabels") or {}
    pairs = [f"{k}={v}" for k, v in sorted(common.items()) if k not in (_NAME_LABEL, _SEVERITY_LABEL)]
    return ", ".join(pairs)


def title(payload: dict[str, Any], kind: str = "") -> str:
    """One line, e.g. "[FIRING:2] HighCPU (env=prod)"; kinds other than firing/resolved are said at the end."""
    names = ", ".join(alert_names(payload)) or "alert"
    line = f"[{status_tag(payload)}] {names}"
    where = _where(payload)
    if where:
        line += f" ({where})"
    if kind in ("reminder", "escalation"):
        line += f" — {kind}"
    return line[:900]


def link(payload: dict[str, Any]) -> str:
    """Where a person goes next: the first alert's generatorURL, else the payload's externalURL."""
    for alert in alerts_of(payload):
        if alert.get("generatorURL"):
            return str(alert["generatorURL"])
    return str(payload.get("externalURL") or "")


def summary(alert: dict[str, Any]) -> str:
    annotations = alert.get("annotations") or {}
    return str(annotations.get("summary") or annotations.get("description") or "")


def _labels_line(labels: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(labels.items()))


def text_body(payload: dict[str, Any], kind: str = "") -> str:
    """The plain-text email body: a heading, then each alert with its labels, annotations and times."""
    lines = [title(payload, kind), ""]
    sev = severity(payload)
    if sev:
        lines.append(f"Severity: {sev}")
    lines.append(f"Status: {payload.get('status', '')}")
    lines.append("")
    for alert in alerts_of(payload):
        labels = alert.get("labels") or {}
        lines.append(f"- [{str(alert.get('status', '')).upper()}] {labels.get(_NAME_LABEL, 'alert')}")
        text = summary(alert)
        if text:
            lines.append(f"  Summary: {text}")
        for key, value in sorted((alert.get("annotations") or {}).items()):
            if key != "summary":
                lines.append(f"  {key.capitalize()}: {value}")
        lines.append(f"  Labels: {_labels_line(labels)}")
        lines.append(f"  Started: {alert.get('startsAt', '')}")
        if alert.get("status") == "resolved":
            lines.append(f"  Ended: {alert.get('endsAt', '')}")
        if alert.get("generatorURL"):
            lines.append(f"  Source: {alert['generatorURL']}")
        lines.append("")
    if payload.get("externalURL"):
        lines.append(f"FiberStack: {payload['externalURL']}")
    return "\n".join(lines).rstrip() + "\n"
