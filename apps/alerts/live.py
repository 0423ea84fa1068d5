"""Live alert updates over the Channels layer. Only the lifecycle services broadcast, and only from
``transaction.on_commit``, so a browser never hears about a transition that rolled back."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)

ORG_ALERTS_GROUP = "org.{org_id}.alerts"


def alerts_group(organization_id: int) -> str:
    return ORG_ALERTS_GROUP.format(org_id=organization_id)


def alert_payload(alert: Any) -> dict[str, Any]:
    """The per-alert fields the alert list updates in place (JSON-safe, public ids only)."""
    return {
        "id": str(alert.public_id),
        "rule": str(alert.rule.public_id),
        "name": alert.labels.get("alertname", ""),
        "state": alert.state,
        "severity": alert.severity,
        "value": alert.value,
        "threshold": alert.threshold,
        "summary": alert.summary,
        "labels": alert.labels,
        "started_at": alert.started_at.isoformat() if alert.started_at else None,
        "acknowledged_at": alert.acknowledged_at.isoformat() if alert.acknowledged_at else None,
        "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
        "suppressed_reason": alert.suppressed_reason,
        "inhibited_by": alert.inhibited_by,
    }


def broadcast_alerts_update(organization_id: int, alerts: Iterable[dict[str, Any]]) -> None:
    """Send ``{"type": "alerts.update", "alerts": [...]}`` to the organization's alerts group.

    Never raises: live updates are best effort, and a Redis outage must not fail the evaluation or the
    request that caused them (DESIGN "Redis"); pages re-read PostgreSQL on reload."""
    payload = list(alerts)
    if not payload:
        return
    try:
        layer = get_channel_layer()
        if layer is None:
            return
        async_to_sync(layer.group_send)(alerts_group(organization_id), {"type": "alerts.update", "alerts": payload})
    except Exception:  # any transport failure is logged and dropped by design
        logger.warning("Could not broadcast alerts update for organization %s", organization_id, exc_info=True)
