"""A coalescing throttle in Redis: at most one frame per key per interval, across every process, with a
trailing flush so the last items of a burst are sent too (apps.metrics.live for host pages,
apps.metrics.live_dashboards for saved dashboards).

Per key (an id: a host, an organization) it keeps a *pending* hash (coalescing: a later value of a field
replaces the earlier), a *gate* (``SET NX PX`` of the interval) and a *trail* key:

1. :meth:`Throttle.push` adds the fields to each key's pending hash and claims its gate, in one pipeline;
2. a key whose gate it claimed is flushed at once (leading edge): its pending hash is taken and deleted in
   one transaction and handed to ``send``; a key whose gate was taken gets a trailing flush timed for the
   gate's expiry (at most one per key per window, by the ``trail`` key), so the end of a burst arrives too
   instead of waiting for the next push.

Best effort, like every ingest consumer: Redis down, or a process that dies before its trailing timer,
loses live frames, never stored data."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from django.core.cache import cache

from apps.core import redis

logger = logging.getLogger(__name__)

#: ``send(organization_id, {key id: {field: value}})``: deliver what was pending (never called empty).
Send = Callable[[int, dict[int, dict[str, str]]], None]

# Pending fields of a key nobody flushes (every watcher gone) disappear with this.
PENDING_TTL_MS = 60_000
# A trailing flush fires this long after the gate expires (the gate's PTTL is rounded down).
TRAIL_SLACK_MS = 20


class Throttle:
    """One throttled stream: ``prefix`` names its Redis keys, ``interval_ms()`` the least time between two
    frames of one key (read on each push, so a setting change applies at once), ``send`` delivers."""

    def __init__(self, prefix: str, interval_ms: Callable[[], int], send: Send, what: str) -> None:
        self.prefix = prefix
        self.interval_ms = interval_ms
        self.send = send
        self.what = what

    def key(self, kind: str, ident: int) -> str:
        # Through the cache's prefix, so test processes sharing one Redis never see each other's keys.
        return cache.make_key(f"{self.prefix}:{kind}:{ident}")

    def push(self, client: Any, organization_id: int, pending: Mapping[int, Mapping[str, str]]) -> None:
        """Queue the fields per key and send what is due now; schedule the trailing flushes. Raises
        RedisError from the queueing round trip (the caller logs it), never from sending."""
        due, waiting = self._queue(client, pending)
        if due:
            self.flush(organization_id, due)
        for ident, delay_ms in waiting.items():
            self._schedule(organization_id, ident, delay_ms)

    def _queue(self, client: Any, pending: Mapping[int, Mapping[str, str]]) -> tuple[list[int], dict[int, int]]:
        """Add the fields to each key's pending hash and claim its gate, in one round trip. Returns the keys
        whose gate was claimed (flush now) and, for the others that won their ``trail`` key, the milliseconds
        until their gate opens (flush then); the rest already have a trailing flush coming."""
        gate_ms = self.interval_ms()
        idents = [i for i, fields in pending.items() if fields]
        pipe = client.pipeline(transaction=False)
        for ident in idents:
            pipe.hset(self.key("pending", ident), mapping=dict(pending[ident]))
            pipe.pexpire(self.key("pending", ident), PENDING_TTL_MS)
            pipe.set(self.key("gate", ident), 1, nx=True, px=gate_ms)
            pipe.pttl(self.key("gate", ident))
        replies = pipe.execute()
        due: list[int] = []
        shut: dict[int, int] = {}
        for n, ident in enumerate(idents):
            claimed, ttl = replies[4 * n + 2], replies[4 * n + 3]
            if claimed:
                due.append(ident)
            else:
                shut[ident] = max(int(ttl), 0)
        if not shut:
            return due, {}
        pipe = client.pipeline(transaction=False)
        for ident, ttl in shut.items():
            pipe.set(self.key("trail", ident), 1, nx=True, px=ttl + TRAIL_SLACK_MS)
        won = pipe.execute()
        return due, {ident: ttl for (ident, ttl), ok in zip(shut.items(), won, strict=True) if ok}

    def _take(self, client: Any, idents: Iterable[int]) -> dict[int, dict[str, str]]:
        """Every pending field of the keys, removed in the same transaction (a field is sent once)."""
        ids = list(idents)
        pipe = client.pipeline(transaction=True)
        for ident in ids:
            pipe.hgetall(self.key("pending", ident))
            pipe.delete(self.key("pending", ident))
        replies = pipe.execute()
        return {ident: {k.decode(): v.decode() for k, v in replies[2 * n].items()}
                for n, ident in enumerate(ids) if replies[2 * n]}

    def flush(self, organization_id: int, idents: Iterable[int]) -> None:
        """Send the keys' pending fields. Never raises."""
        try:
            taken = self._take(redis.client(), idents)
        except redis.RedisError as exc:
            logger.warning("%s not sent (Redis unavailable): %s", self.what, exc)
            return
        if not taken:
            return
        try:
            self.send(organization_id, taken)
        except Exception:  # a transport failure is logged and dropped: live frames are best effort
            logger.warning("Could not send %s for organization %s", self.what, organization_id, exc_info=True)

    def _schedule(self, organization_id: int, ident: int, delay_ms: int) -> None:
        timer = threading.Timer((delay_ms + TRAIL_SLACK_MS) / 1000, self._trailing_flush, (organization_id, ident))
        timer.daemon = True
        timer.start()

    def _trailing_flush(self, organization_id: int, ident: int) -> None:
        """The gate should be open now: claim it and send what waited. If another push claimed it first (and
        took what was pending then), fields queued after that push wait for its gate to open in turn."""
        try:
            pipe = redis.client().pipeline(transaction=False)
            pipe.set(self.key("gate", ident), 1, nx=True, px=self.interval_ms())
            pipe.pttl(self.key("gate", ident))
            pipe.exists(self.key("pending", ident))
            claimed, ttl, pending = pipe.execute()
        except redis.RedisError as exc:
            logger.warning("%s not sent (Redis unavailable): %s", self.what, exc)
            return
        if claimed:
            self.flush(organization_id, [ident])
        elif pending:
            self._schedule(organization_id, ident, max(int(ttl), 0))
