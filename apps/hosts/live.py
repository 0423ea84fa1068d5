"""Live host updates over the Channels layer. Services call `broadcast_hosts_update` from
`transaction.on_commit` (metrics ingest through its after-commit consumer, `apps.hosts.seen`), so a
browser never hears about a change that rolled back."""

from __future__ import annotations

import datetime
import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.utils import timezone

logger = logging.getLogger(__name__)

ORG_HOSTS_GROUP = "org.{org_id}.hosts"


def hosts_group(organization_id: int) -> str:
    return ORG_HOSTS_GROUP.format(org_id=organization_id)


def host_payload(host: Any, now: datetime.datetime | None = None) -> dict[str, Any]:
    """The per-host fields the list page updates in place."""
    return {
        "id": str(host.public_id),
        "name": host.name,
        "status": host.status(now or timezone.now()),
        "last_seen_at": host.last_seen_at.isoformat() if host.last_seen_at else None,
    }


def broadcast_hosts_update(organization_id: int, payload: dict) -> None:
    """Send `{"type": "hosts.update", **payload}` to the organization's hosts group.

    Never raises: live updates are best effort, and a Redis outage must not fail the ingest or the
    request that triggered them (DESIGN "Redis"); pages re-read PostgreSQL on reload."""
    try:
        layer = get_channel_layer()
        if layer is None:
            return
        async_to_sync(layer.group_send)(hosts_group(organization_id), {**payload, "type": "hosts.update"})
    except Exception:  # any transport failure is logged and dropped by design
        logger.warning("Could not broadcast hosts update for organization %s", organization_id, exc_info=True)
