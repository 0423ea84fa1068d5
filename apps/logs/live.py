"""Live tail over the Channels layer: ingest hands each committed batch's newest entries to the
organization's group; the consumer (apps/logs/consumers.py) filters them per browser."""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)

ORG_LOGS_GROUP = "org.{org_id}.logs"


def logs_group(organization_id: int) -> str:
    return ORG_LOGS_GROUP.format(org_id=organization_id)


def broadcast_entries(organization_id: int, entries: list[dict[str, Any]]) -> None:
    """Send ``{"type": "logs.entries", "entries": [...]}``. Never raises: live tail is best effort and a
    Redis outage must not fail ingest (DESIGN "Redis")."""
    if not entries:
        return
    try:
        layer = get_channel_layer()
        if layer is not None:
            async_to_sync(layer.group_send)(logs_group(organization_id), {"type": "logs.entries",
                                                                          "entries": entries})
    except Exception:  # transport failures are logged and dropped by design
        logger.warning("Could not broadcast log entries for organization %s", organization_id, exc_info=True)
