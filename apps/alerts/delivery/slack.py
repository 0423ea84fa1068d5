"""Slack incoming-webhook transport: a short readable message (text fallback + Block Kit blocks) rendered
from the Alertmanager v4 payload. Slack answers 200 "ok"; 4xx (invalid_payload, no_service,
channel_is_archived) are final, 429 and 5xx are retried."""

from __future__ import annotations

import json
from typing import Any

from apps.alerts.delivery import render
from apps.alerts.delivery.http import post
from apps.alerts.delivery.result import DeliveryResult

#: Slack allows 50 blocks and 3000 characters per section; past this many alerts we summarise.
MAX_ALERT_BLOCKS = 10
_SECTION_LIMIT = 2900
_EMOJI = {"firing": ":rotating_light:", "resolved": ":white_check_mark:"}


def _alert_block(alert: dict[str, Any]) -> dict[str, Any]:
    labels = alert.get("labels") or {}
    name = labels.get("alertname", "alert")
    head = f"*{name}* — {str(alert.get('status', '')).upper()}"
    if labels.get("severity"):
        head += f" · severity *{labels['severity']}*"
    lines = [head]
    text = render.summary(alert)
    if text:
        lines.append(text)
    others = ", ".join(f"{k}={v}" for k, v in sorted(labels.items()) if k not in ("alertname", "severity"))
    if others:
        lines.append(f"`{others}`")
    if alert.get("generatorURL"):
        lines.append(f"<{alert['generatorURL']}|Open in FiberStack>")
    return {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)[:_SECTION_LIMIT]}}


def message(payload: dict[str, Any], kind: str = "") -> dict[str, Any]:
    """{"text": one-line fallback (notifications, old clients), "blocks": header, context, one per alert}."""
    status = str(payload.get("status") or "firing")
    heading = f"{_EMOJI.get(status, '')} {render.title(payload, kind)}".strip()
    context = [f"Status: *{status}*"]
    if render.severity(payload):
        context.append(f"Severity: *{render.severity(payload)}*")
    link = render.link(payload)
    if link:
        context.append(f"<{link}|View in FiberStack>")
    alerts = render.alerts_of(payload)
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{heading}*"[:_SECTION_LIMIT]}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(context)}]},
        {"type": "divider"},
        *[_alert_block(alert) for alert in alerts[:MAX_ALERT_BLOCKS]],
    ]
    if len(alerts) > MAX_ALERT_BLOCKS:
        blocks.append({"type": "context", "elements": [
            {"type": "mrkdwn", "text": f"… and {len(alerts) - MAX_ALERT_BLOCKS} more alerts"}]})
    first = render.summary(alerts[0]) if alerts else ""
    text = render.title(payload, kind) + (f": {first}" if first else "")
    return {"text": text[:_SECTION_LIMIT], "blocks": blocks}


def send(channel: Any, notification: Any) -> DeliveryResult:
    if not channel.url:
        return DeliveryResult.fail(f"channel '{channel.name}' has no URL")
    body = json.dumps(message(notification.payload, notification.kind), ensure_ascii=False).encode()
    return post(channel.url, body, {"Content-Type": "application/json"})
