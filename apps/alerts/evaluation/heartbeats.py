"""When each host last pushed anything, to the second: the source of "host down".

``Host.last_seen_at`` is too coarse for it: ``hosts.services.mark_hosts_seen`` writes it at most once per
``SEEN_RESOLUTION_SECONDS`` (30 s) per host, so it can be up to 30 s older than the host's last push, and
a 120 s host-down rule read from it alone would fire up to 30 s early on a host that is fine. So the
ingest consumer also records every batch's hosts in one Redis sorted set per organization (member: host
id, score: receive time; ``ZADD GT`` never moves a host back in time) -- one round trip per batch, shared
with the rule coalescing. The evaluator takes ``max(score, last_seen_at)``: the sorted set is exact, and
``last_seen_at`` keeps host-down working, only coarser, while Redis is down or after it lost its data."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from typing import Any

from django.conf import settings

from apps.core import redis
from apps.hosts.cache_scope import epoch

logger = logging.getLogger(__name__)

#: The key lives a day past the last write: a long-silent organization's set simply expires, and its
#: hosts fall back to ``last_seen_at``.
KEY_TTL_SECONDS = 86_400


def seen_key(org_id: int) -> str:
    # Database identity in the key, as for the hot tier: another database's organization 1 never matches.
    return f"{settings.CACHES['default'].get('KEY_PREFIX', '')}:alerts:seen:{epoch()}:{org_id}"


def record_seen(pipe: Any, org_id: int, host_ids: Iterable[int], when: dt.datetime) -> None:
    """Queue ``ZADD GT`` of the hosts at ``when`` (and the key's expiry) on a Redis pipeline."""
    ids = list(host_ids)
    if not ids:
        return
    key = seen_key(org_id)
    score = when.timestamp()
    pipe.zadd(key, dict.fromkeys(map(str, ids), score), gt=True)
    pipe.expire(key, KEY_TTL_SECONDS)


def last_seen(org_id: int, host_ids: list[int]) -> dict[int, float]:
    """host id -> epoch seconds of its last push, for the hosts the set knows ({} when Redis is down)."""
    if not host_ids:
        return {}
    try:
        scores = redis.client().zmscore(seen_key(org_id), [str(h) for h in host_ids])
    except Exception as exc:
        logger.warning("host heartbeats unavailable, host-down falls back to last_seen_at: %s", exc)
        return {}
    return {host: float(score) for host, score in zip(host_ids, scores, strict=True) if score is not None}
