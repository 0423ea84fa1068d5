"""New points for the charts of open host pages, pushed after commit and throttled per host.

An open host page subscribes to ``ws/<org>/hosts/<host>/points/`` (``apps.metrics.consumers``), which marks
the host as *watched* in Redis while the socket lives. The ingest consumer :func:`consume` (listed in
``FIBERSTACK_INGEST_CONSUMERS``) then does, per committed batch:

1. which of the batch's hosts are watched: the organization's watch set (a sorted set of host ids scored
   by expiry), read at most once per WATCHED_CACHE_SECONDS per process -- so a batch of unwatched hosts
   usually costs no Redis round trip at all, and a page opened in another process starts receiving
   within that time;
2. for the watched ones, one pipeline that adds the batch's newest point per series to the host's
   *pending* hash (coalescing: a later point of a series replaces the earlier) and claims the host's
   *gate* (``SET NX PX`` of ``FIBERSTACK_LIVE_POINTS_INTERVAL_MS``);
3. a host whose gate it claimed is flushed at once (leading edge), one whose gate was taken gets a
   trailing flush at the gate's expiry -- the coalescing throttle of ``apps.metrics.live_throttle``, which
   saved dashboards' notices (``apps.metrics.live_dashboards``) share.

The watch set also holds the member ``dashboards`` while a saved dashboard of the organization is open, so
the dashboards' consumer learns it from the same cached read (no extra round trip per batch).

So a page gets at most one frame per host per interval, whatever the ingest rate, and no point of a
series newer than the last frame is left behind. Everything is best effort (as every ingest consumer):
Redis down or a process that dies before its trailing timer loses live points, never stored data -- a
reload reads them from PostgreSQL."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, NamedTuple

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.cache import cache

from apps.core import redis
from apps.metrics.live_throttle import Throttle
from apps.metrics.models import Series

if TYPE_CHECKING:
    from apps.metrics.hooks import IngestBatch

logger = logging.getLogger(__name__)

HOST_POINTS_GROUP = "org.{org_id}.host.{host_id}.points"
#: The channel-layer event type; consumers handle it as ``metrics_points``.
POINTS_EVENT = "metrics.points"
#: How long a watch lasts without renewal; open sockets renew it every WATCH_RENEW_SECONDS.
WATCH_SECONDS = 60
WATCH_RENEW_SECONDS = 20
WATCHED_CACHE_SECONDS = 1.0
#: The watch-set member that stands for "a saved dashboard of the organization is open".
DASHBOARDS_MEMBER = "dashboards"


class Watched(NamedTuple):
    """What of an organization live pages show now: host ids with an open host page, and whether a saved
    dashboard is open."""

    hosts: frozenset[int]
    dashboards: bool


# organization id -> (monotonic time the entry expires, what is watched): this process's copy.
_watched_cache: dict[int, tuple[float, Watched]] = {}


def host_points_path(org_slug: str, host_public_id: Any) -> str:
    """The websocket path a host page subscribes to (apps/metrics/routing.py)."""
    return f"/ws/{org_slug}/hosts/{host_public_id}/points/"


def host_points_group(organization_id: int, host_id: int) -> str:
    return HOST_POINTS_GROUP.format(org_id=organization_id, host_id=host_id)


def interval_ms() -> int:
    """Least time between two frames for one host (FIBERSTACK_LIVE_POINTS_INTERVAL_MS)."""
    return int(getattr(settings, "FIBERSTACK_LIVE_POINTS_INTERVAL_MS", 1000))


def _key(kind: str, ident: int) -> str:
    return THROTTLE.key(kind, ident)


def _watch_key(organization_id: int) -> str:
    # Through the cache's prefix, so test processes sharing one Redis never see each other's keys.
    return cache.make_key(f"live:points:watched:{organization_id}")


def watch_host(organization_id: int, host_id: int) -> None:
    """Mark a host as shown on a live page for WATCH_SECONDS (renewed by the socket while it is open)."""
    watch(organization_id, str(host_id))


def watch(organization_id: int, member: str) -> None:
    """Mark ``member`` (a host id, or DASHBOARDS_MEMBER) of the organization as shown on a live page for
    WATCH_SECONDS (renewed by the socket while it is open); expired members are dropped on the way."""
    now = time.time()
    key = _watch_key(organization_id)
    pipe = redis.client().pipeline(transaction=False)
    pipe.zadd(key, {member: now + WATCH_SECONDS})
    pipe.zremrangebyscore(key, "-inf", now)
    pipe.expire(key, WATCH_SECONDS)
    pipe.execute()
    _watched_cache.pop(organization_id, None)  # this process sees its own new page at once


def watched(client: Any, organization_id: int) -> Watched:
    """What the organization's live pages show, from this process's copy while it is fresh (one read per
    WATCHED_CACHE_SECONDS per process, shared by the host and the dashboard consumers)."""
    now = time.monotonic()
    cached = _watched_cache.get(organization_id)
    if cached is not None and cached[0] > now:
        return cached[1]
    members = [m.decode() for m in client.zrangebyscore(_watch_key(organization_id), time.time(), "+inf")]
    state = Watched(frozenset(int(m) for m in members if m.isdigit()), DASHBOARDS_MEMBER in members)
    _watched_cache[organization_id] = (now + WATCHED_CACHE_SECONDS, state)
    return state


def consume(batch: IngestBatch) -> None:
    """Ingest consumer: queue the batch's newest point per series of each watched host and send what is due."""
    batch_hosts = set(batch.host_of_series.values())
    batch_hosts.discard(None)
    if not batch_hosts or not batch.latest:
        return
    try:
        client = redis.client()
        watched_hosts = watched(client, batch.organization_id).hosts.intersection(batch_hosts)
        if not watched_hosts:
            return  # the usual case: no page shows these hosts, so the batch's points are not even grouped
        by_host: dict[int, dict[int, tuple[int, float]]] = {}
        for sid, point in batch.latest.items():
            host_id = batch.host_of_series.get(sid)
            if host_id in watched_hosts:
                by_host.setdefault(host_id, {})[sid] = point
        hosts = sorted(by_host)
        if not hosts:
            return
        public = _public_ids(batch.organization_id, [sid for h in hosts for sid in by_host[h]])
        THROTTLE.push(client, batch.organization_id,
                      {h: {public[sid]: _encode(point) for sid, point in by_host[h].items() if sid in public}
                       for h in hosts})
    except redis.RedisError as exc:
        logger.warning("live chart points not sent (Redis unavailable): %s", exc)


def _public_ids(organization_id: int, series_ids: list[int]) -> dict[int, str]:
    """Series id -> the public id the read API names it by (and so the page knows it by)."""
    return {sid: str(public_id) for sid, public_id in Series.objects.filter(
        organization_id=organization_id, pk__in=series_ids).values_list("pk", "public_id")}


def _encode(point: tuple[int, float]) -> str:
    return f"{point[0]} {point[1]!r}"


def _send(organization_id: int, taken: dict[int, dict[str, str]]) -> None:
    """Send hosts' pending points to their groups: ``{"type": "metrics.points", "points": [{"id": series
    public id, "t": epoch seconds, "v": value}, ...]}``."""
    layer = get_channel_layer()
    if layer is None:
        return
    for host_id, fields in taken.items():
        points = []
        for sid, raw in sorted(fields.items()):
            t_us, value = raw.split(" ", 1)
            points.append({"id": sid, "t": int(t_us) / 1e6, "v": float(value)})
        async_to_sync(layer.group_send)(host_points_group(organization_id, host_id),
                                        {"type": POINTS_EVENT, "points": points})


THROTTLE = Throttle("live:points", interval_ms, _send, "live chart points")


def flush(organization_id: int, host_ids: Iterable[int]) -> None:
    """Send the hosts' pending points now (see ``_send`` for the frame). Never raises."""
    THROTTLE.flush(organization_id, host_ids)
