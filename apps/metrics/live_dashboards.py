""""New data for these metric names" notices for open saved dashboards, sent after commit and throttled per
organization.

A saved dashboard's widgets query many hosts and labels, so a per-host subscription does not fit them.
Instead an open dashboard page subscribes to ``ws/<org>/dashboards/live/`` (``apps.metrics.consumers``),
which puts the member ``dashboards`` into the organization's watch set (``apps.metrics.live``) while the
socket lives. The ingest consumer :func:`consume` (in ``FIBERSTACK_INGEST_CONSUMERS``) then, per committed
batch of a watched organization, queues the batch's metric names in the organization's throttle
(``apps.metrics.live_throttle``: at most one notice per organization per
``FIBERSTACK_LIVE_DASHBOARD_INTERVAL_MS``, names coalesced, trailing flush) and the page re-fetches the
newest part of each widget that shows one of those names, through the read API it already uses.

An organization without an open dashboard costs nothing beyond the watch-set read the host consumer does
anyway (cached for a second per process, shared): no names are looked up, nothing is queued."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings

from apps.core import redis
from apps.metrics import live
from apps.metrics.live_throttle import Throttle
from apps.metrics.models import Series

if TYPE_CHECKING:
    from apps.metrics.hooks import IngestBatch

logger = logging.getLogger(__name__)

DASHBOARDS_GROUP = "org.{org_id}.dashboards"
#: The channel-layer event type; consumers handle it as ``metrics_names``.
NAMES_EVENT = "metrics.names"


def dashboards_live_path(org_slug: str) -> str:
    """The websocket path a saved dashboard page subscribes to (apps/metrics/routing.py)."""
    return f"/ws/{org_slug}/dashboards/live/"


def dashboards_group(organization_id: int) -> str:
    return DASHBOARDS_GROUP.format(org_id=organization_id)


def interval_ms() -> int:
    """Least time between two notices for one organization (FIBERSTACK_LIVE_DASHBOARD_INTERVAL_MS)."""
    return int(getattr(settings, "FIBERSTACK_LIVE_DASHBOARD_INTERVAL_MS", 2000))


def watch_dashboards(organization_id: int) -> None:
    """Mark the organization as having an open saved dashboard for live.WATCH_SECONDS (renewed by the socket)."""
    live.watch(organization_id, live.DASHBOARDS_MEMBER)


def _send(organization_id: int, taken: dict[int, dict[str, str]]) -> None:
    """``{"type": "metrics.names", "names": [metric names, sorted]}`` to the organization's dashboards."""
    layer = get_channel_layer()
    if layer is None:
        return
    for org_id, fields in taken.items():
        async_to_sync(layer.group_send)(dashboards_group(org_id), {"type": NAMES_EVENT, "names": sorted(fields)})


THROTTLE = Throttle("live:dashboards", interval_ms, _send, "live dashboard notice")


def consume(batch: IngestBatch) -> None:
    """Ingest consumer: queue the batch's metric names for the organization's open dashboards, if any."""
    if not batch.latest:
        return
    org_id = batch.organization_id
    try:
        client = redis.client()
        if not live.watched(client, org_id).dashboards:
            return
        names = set(Series.objects.for_org(org_id).filter(pk__in=list(batch.latest)).order_by()
                    .values_list("name", flat=True).distinct())
        if names:
            THROTTLE.push(client, org_id, {org_id: dict.fromkeys(names, "1")})
    except redis.RedisError as exc:
        logger.warning("live dashboard notice not sent (Redis unavailable): %s", exc)


def flush(organization_id: int) -> None:
    """Send the organization's pending notice now. Never raises."""
    THROTTLE.flush(organization_id, [organization_id])
