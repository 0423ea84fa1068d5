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
3. a host whose gate it claimed is flushed at once (leading edge): its pending hash is taken and deleted
   in one transaction and sent to the host's group; a host whose gate was taken gets a trailing flush
   timed for the gate's expiry (at most one per host per window, by a ``trail`` key), so the last points
   of a burst arrive too instead of waiting for the next push.

So a page gets at most one frame per host per interval, whatever the ingest rate, and no point of a
series newer than the last frame is left behind. Everything is best effort (as every ingest consumer):
Redis down or a process that dies before its trailing timer loses live points, never stored data -- a
reload reads them from PostgreSQL."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.cache import cache

from apps.core import redis
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
# organization id -> (monotonic time the entry expires, watched host ids): this process's copy.
_watched_cache: dict[int, tuple[float, frozenset[int]]] = {}
# Pending points of a host nobody flushes (every watcher gone) disappear with this.
PENDING_TTL_MS = 60_000
# A trailing flush fires this long after the gate expires (the gate's PTTL is rounded down).
TRAIL_SLACK_MS = 20


def host_points_path(org_slug: str, host_public_id: Any) -> str:
    """The websocket path a host page subscribes to (apps/metrics/routing.py)."""
    return f"/ws/{org_slug}/hosts/{host_public_id}/points/"


def host_points_group(organization_id: int, host_id: int) -> str:
    return HOST_POINTS_GROUP.format(org_id=organization_id, host_id=host_id)


def interval_ms() -> int:
    """Least time between two frames for one host (FIBERSTACK_LIVE_POINTS_INTERVAL_MS)."""
    return int(getattr(settings, "FIBERSTACK_LIVE_POINTS_INTERVAL_MS", 1000))


def _key(kind: str, ident: int) -> str:
    # Through the cache's prefix, so test processes sharing one Redis never see each other's keys.
    return cache.make_key(f"live:points:{kind}:{ident}")


def watch_host(organization_id: int, host_id: int) -> None:
    """Mark a host as shown on a live page for WATCH_SECONDS (renewed by the socket while it is open);
    expired members of the organization's set are dropped on the way."""
    now = time.time()
    pipe = redis.client().pipeline(transaction=False)
    pipe.zadd(_key("watched", organization_id), {str(host_id): now + WATCH_SECONDS})
    pipe.zremrangebyscore(_key("watched", organization_id), "-inf", now)
    pipe.expire(_key("watched", organization_id), WATCH_SECONDS)
    pipe.execute()
    _watched_cache.pop(organization_id, None)  # this process sees its own new page at once


def _watched(client: Any, organization_id: int) -> frozenset[int]:
    """The organization's watched hosts, from this process's copy while it is fresh."""
    now = time.monotonic()
    cached = _watched_cache.get(organization_id)
    if cached is not None and cached[0] > now:
        return cached[1]
    hosts = frozenset(int(m) for m in client.zrangebyscore(_key("watched", organization_id), time.time(), "+inf"))
    _watched_cache[organization_id] = (now + WATCHED_CACHE_SECONDS, hosts)
    return hosts


def consume(batch: IngestBatch) -> None:
    """Ingest consumer: queue the batch's newest point per series of each watched host and send what is due."""
    by_host: dict[int, dict[int, tuple[int, float]]] = {}
    for sid, point in batch.latest.items():
        host_id = batch.host_of_series.get(sid)
        if host_id is not None:
            by_host.setdefault(host_id, {})[sid] = point
    if not by_host:
        return
    try:
        client = redis.client()
        watched = sorted(_watched(client, batch.organization_id).intersection(by_host))
        if not watched:
            return
        public = _public_ids(batch.organization_id, [sid for h in watched for sid in by_host[h]])
        due, waiting = _queue(client, {h: {public[sid]: point for sid, point in by_host[h].items() if sid in public}
                                       for h in watched})
    except redis.RedisError as exc:
        logger.warning("live chart points not sent (Redis unavailable): %s", exc)
        return
    if due:
        flush(batch.organization_id, due)
    for host_id, delay_ms in waiting.items():
        _schedule(batch.organization_id, host_id, delay_ms)


def _public_ids(organization_id: int, series_ids: list[int]) -> dict[int, str]:
    """Series id -> the public id the read API names it by (and so the page knows it by)."""
    return {sid: str(public_id) for sid, public_id in Series.objects.filter(
        organization_id=organization_id, pk__in=series_ids).values_list("pk", "public_id")}


def _encode(point: tuple[int, float]) -> str:
    return f"{point[0]} {point[1]!r}"


def _queue(client: Any, points: Mapping[int, Mapping[str, tuple[int, float]]]) -> tuple[list[int], dict[int, int]]:
    """Add the points to each host's pending hash and claim its gate, in one round trip. Returns the hosts
    whose gate was claimed (flush now) and, for the others that won their ``trail`` key, the milliseconds
    until their gate opens (flush then); the rest already have a trailing flush coming."""
    gate_ms = interval_ms()
    hosts = [h for h, pts in points.items() if pts]
    pipe = client.pipeline(transaction=False)
    for host_id in hosts:
        pipe.hset(_key("pending", host_id), mapping={sid: _encode(p) for sid, p in points[host_id].items()})
        pipe.pexpire(_key("pending", host_id), PENDING_TTL_MS)
        pipe.set(_key("gate", host_id), 1, nx=True, px=gate_ms)
        pipe.pttl(_key("gate", host_id))
    replies = pipe.execute()
    due: list[int] = []
    shut: dict[int, int] = {}
    for i, host_id in enumerate(hosts):
        claimed, ttl = replies[4 * i + 2], replies[4 * i + 3]
        if claimed:
            due.append(host_id)
        else:
            shut[host_id] = max(int(ttl), 0)
    if not shut:
        return due, {}
    pipe = client.pipeline(transaction=False)
    for host_id, ttl in shut.items():
        pipe.set(_key("trail", host_id), 1, nx=True, px=ttl + TRAIL_SLACK_MS)
    won = pipe.execute()
    return due, {host_id: ttl for (host_id, ttl), ok in zip(shut.items(), won, strict=True) if ok}


def _take_pending(client: Any, host_ids: Iterable[int]) -> dict[int, dict[str, tuple[float, float]]]:
    """Every pending point of the hosts, removed in the same transaction (a point is sent once)."""
    ids = list(host_ids)
    pipe = client.pipeline(transaction=True)
    for host_id in ids:
        pipe.hgetall(_key("pending", host_id))
        pipe.delete(_key("pending", host_id))
    replies = pipe.execute()
    taken: dict[int, dict[str, tuple[float, float]]] = {}
    for i, host_id in enumerate(ids):
        fields = replies[2 * i]
        if fields:
            taken[host_id] = {}
            for sid, raw in fields.items():
                t_us, value = raw.decode().split(" ", 1)
                taken[host_id][sid.decode()] = (int(t_us) / 1e6, float(value))
    return taken


def flush(organization_id: int, host_ids: Iterable[int]) -> None:
    """Send the hosts' pending points to their groups: ``{"type": "metrics.points", "points": [{"id":
    series public id, "t": epoch seconds, "v": value}, ...]}``. Never raises."""
    try:
        taken = _take_pending(redis.client(), host_ids)
    except redis.RedisError as exc:
        logger.warning("live chart points not sent (Redis unavailable): %s", exc)
        return
    try:
        layer = get_channel_layer()
        if layer is None:
            return
        for host_id, points in taken.items():
            event = {"type": POINTS_EVENT,
                     "points": [{"id": sid, "t": t, "v": v} for sid, (t, v) in sorted(points.items())]}
            async_to_sync(layer.group_send)(host_points_group(organization_id, host_id), event)
    except Exception:  # a transport failure is logged and dropped: live points are best effort
        logger.warning("Could not send live chart points for organization %s", organization_id, exc_info=True)


def _schedule(organization_id: int, host_id: int, delay_ms: int) -> None:
    timer = threading.Timer((delay_ms + TRAIL_SLACK_MS) / 1000, _trailing_flush, (organization_id, host_id))
    timer.daemon = True
    timer.start()


def _trailing_flush(organization_id: int, host_id: int) -> None:
    """The gate should be open now: claim it and send what waited. If another push claimed it first (and
    took what was pending then), points queued after that push wait for its gate to open in turn."""
    try:
        client = redis.client()
        pipe = client.pipeline(transaction=False)
        pipe.set(_key("gate", host_id), 1, nx=True, px=interval_ms())
        pipe.pttl(_key("gate", host_id))
        pipe.exists(_key("pending", host_id))
        claimed, ttl, pending = pipe.execute()
    except redis.RedisError as exc:
        logger.warning("live chart points not sent (Redis unavailable): %s", exc)
        return
    if claimed:
        flush(organization_id, [host_id])
    elif pending:
        _schedule(organization_id, host_id, max(int(ttl), 0))
