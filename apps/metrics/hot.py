"""The hot tier: the latest value of every series in Redis, so "current value" widgets and host pages
never touch the raw table.

Two hashes per organization: ``hot:{org}`` maps series id -> "time_us value", and ``hot:{org}:host:{id}``
holds the same for the series of one host. A small Lua script writes a field only when the incoming
sample is not older than the stored one: late, out-of-order or retried older batches never move "latest"
backwards, and a sample with the same timestamp replaces it (the later write wins, as in the raw table).
Everything here is best effort: Redis down means a stale hot tier, never a failed ingest."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from django.conf import settings

from apps.core import redis
from apps.hosts.cache_scope import epoch

if TYPE_CHECKING:
    from apps.metrics.hooks import IngestBatch

logger = logging.getLogger(__name__)

# KEYS[1]: the organization hash, KEYS[2..]: host hashes. ARGV: field, time_us, value, host (an index into
# KEYS, 0 for none), repeated. A field is set unless the organization hash holds a newer time_us (equal
# times: the later write wins); the host hash gets the same value in the same step, so the two never
# disagree. One call per request.
_SET_IF_NEWER = """
local n = 0
for i = 1, #ARGV, 4 do
  local old = redis.call('HGET', KEYS[1], ARGV[i])
  local newer = true
  if old then
    local t = tonumber(string.match(old, '^(%-?%d+)'))
    if t and t > tonumber(ARGV[i + 1]) then newer = false end
  end
  if newer then
    local value = ARGV[i + 1] .. ' ' .. ARGV[i + 2]
    redis.call('HSET', KEYS[1], ARGV[i], value)
    local host = tonumber(ARGV[i + 3])
    if host > 0 then redis.call('HSET', KEYS[host + 1], ARGV[i], value) end
    n = n + 1
  end
end
return n
"""
_script: Any = None


def _redis() -> Any:
    return redis.client()


def org_key(org_id: int) -> str:
    # The database identity keeps another database's "organization 1" (same Redis, re-created or restored
    # database) from reading these series ids; series ids are never reused within one database.
    return f"{settings.CACHES['default'].get('KEY_PREFIX', '')}:metrics:hot:{epoch()}:{org_id}"


def host_key(org_id: int, host_id: int) -> str:
    return f"{org_key(org_id)}:host:{host_id}"


def consume(batch: IngestBatch) -> None:
    """Ingest consumer (``FIBERSTACK_INGEST_CONSUMERS``): the request's newest value per series."""
    store_latest(batch.organization_id, batch.latest, batch.host_of_series)


def store_latest(org_id: int, latest: Mapping[int, tuple[int, float]],
                 host_of_series: Mapping[int, int | None]) -> None:
    """Write the newest values to the organization hash and to each host's hash: one script call, one
    round trip, whatever the number of hosts."""
    global _script
    if not latest:
        return
    try:
        client = _redis()
        if _script is None:
            _script = client.register_script(_SET_IF_NEWER)
        keys = [org_key(org_id)]
        host_prefix = f"{keys[0]}:host:"
        slot: dict[int, int] = {}
        args: list[Any] = []
        extend = args.extend
        for sid, (t, v) in latest.items():
            host_id = host_of_series.get(sid)
            if host_id is None:
                index = 0
            else:
                index = slot.get(host_id, 0)
                if not index:
                    keys.append(f"{host_prefix}{host_id}")
                    index = slot[host_id] = len(keys) - 1
            extend((sid, t, repr(v), index))
        _script(keys=keys, args=args, client=client)
    except Exception as exc:
        logger.warning("hot tier unavailable, latest values not updated: %s", exc)


def _decode(raw: Any) -> tuple[float, float] | None:
    if raw is None:
        return None
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    t_us, _, value = text.partition(" ")
    return int(t_us) / 1_000_000, float(value)


def latest_values(org_id: int, series_ids: Iterable[int]) -> dict[int, tuple[float, float]]:
    """series id -> (epoch seconds, value) from the hot tier; missing ids are simply absent."""
    ids = list(series_ids)
    if not ids:
        return {}
    try:
        raw = _redis().hmget(org_key(org_id), ids)
    except Exception as exc:
        logger.warning("hot tier unavailable: %s", exc)
        return {}
    return {sid: decoded for sid, value in zip(ids, raw, strict=True) if (decoded := _decode(value)) is not None}


def latest_for_host(org_id: int, host_id: int) -> dict[int, tuple[float, float]]:
    """series id -> (epoch seconds, value) for every series of one host."""
    try:
        raw = _redis().hgetall(host_key(org_id, host_id))
    except Exception as exc:
        logger.warning("hot tier unavailable: %s", exc)
        return {}
    return {int(k): decoded for k, v in raw.items() if (decoded := _decode(v)) is not None}
