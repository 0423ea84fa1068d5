"""Series resolver: SeriesKey -> int4 series id, for every distinct series of one ingest request.

Lookups go through three layers, each batched for the whole request (never one query per series):

1. an in-process dict ``(scope, key) -> id`` (bounded; cleared when full, which only costs refills);
2. a Redis hash per organization, ``sha256(key) -> id`` (one HMGET), shared by every web process;
3. PostgreSQL: one ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` for all misses, then one SELECT for
   the rows that already existed or that a concurrent request inserted first.

Concurrency: two requests creating the same new series both run the INSERT; the second waits on the
first one's unique-index entry, then does nothing, and its SELECT (a new statement, so a new snapshot
under READ COMMITTED) sees the committed row. Rows are inserted in key-hash order so that two requests
creating overlapping sets of series lock them in the same order and cannot deadlock.

Caches are filled only after the request's transaction commits (``on_commit``): an id from a rolled-back
INSERT must never be handed out. Both caches are keyed by ``apps.hosts.cache_scope.org_scope``
(database identity + the organization's public_id), never by the organization's pk alone: Redis outlives
a re-created or restored database, and an id cached for another database's "organization 1" would
store samples under a series that does not exist or belongs to someone else.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.db import connection, transaction

from apps.core import redis
from apps.hosts.cache_scope import org_scope
from apps.metrics.ingest.types import SeriesKey
from apps.metrics.models import series_key_hash

logger = logging.getLogger(__name__)

LOCAL_CACHE_MAX = 500_000
_local: dict[tuple[str, SeriesKey], int] = {}
# key -> sha256 of its canonical text; pure function of the key, so it may be cached across organizations.
_hash_cache: dict[SeriesKey, bytes] = {}

_INSERT_SQL = """
INSERT INTO metrics_series
    (organization_id, public_id, created_at, updated_at, name, labels, key_hash, host_id, type, help, unit)
SELECT %(org)s, gen_random_uuid(), now(), now(), n.name, n.labels::jsonb, n.key_hash, n.host_id,
       coalesce(f.type, ''), coalesce(f.help, ''), coalesce(nullif(n.unit, ''), f.unit, '')
FROM unnest(%(names)s::text[], %(labels)s::text[], %(hashes)s::bytea[], %(hosts)s::int8[], %(units)s::text[])
     AS n(name, labels, key_hash, host_id, unit)
LEFT JOIN metrics_metricfamily f ON f.organization_id = %(org)s AND f.name = n.name
ORDER BY n.key_hash
ON CONFLICT (organization_id, key_hash) DO NOTHING
RETURNING id, key_hash
"""

_SELECT_SQL = "SELECT id, key_hash FROM metrics_series WHERE organization_id = %s AND key_hash = ANY(%s::bytea[])"


def key_hash(key: SeriesKey) -> bytes:
    found = _hash_cache.get(key)
    if found is None:
        if len(_hash_cache) >= LOCAL_CACHE_MAX:
            _hash_cache.clear()
        found = _hash_cache[key] = series_key_hash(key[0], key[1])
    return found


def redis_key(scope: str) -> str:
    """The organization's Redis hash; ``scope`` is ``org_scope(organization)``."""
    prefix = settings.CACHES["default"].get("KEY_PREFIX", "")
    return f"{prefix}:metrics:series:{scope}"


def _redis() -> Any:
    return redis.client()


def resolve_series(
    organization: Any,
    keys: Iterable[SeriesKey],
    *,
    host_of: Callable[[SeriesKey], int | None],
    units: dict[SeriesKey, str] | None = None,
) -> tuple[dict[SeriesKey, int], int]:
    """Ids for the distinct ``keys`` of one request, creating missing series; returns (ids, created).

    ``host_of(key)`` gives the Host id for a new series (the caller resolved hosts already); ``units``
    gives the unit of new series (JSON doors). Must run inside the request's transaction."""
    org_id = organization.pk
    scope = org_scope(organization)
    ids: dict[SeriesKey, int] = {}
    misses: list[SeriesKey] = []
    local = _local
    for key in keys:
        found = local.get((scope, key))
        if found is None:
            misses.append(key)
        else:
            ids[key] = found
    if not misses:
        return ids, 0

    hashes = [key_hash(key) for key in misses]
    from_redis = _redis_lookup(scope, hashes)
    still: list[tuple[SeriesKey, bytes]] = []
    learnt: dict[SeriesKey, int] = {}
    for key, digest, cached in zip(misses, hashes, from_redis, strict=True):
        if cached is None:
            still.append((key, digest))
        else:
            ids[key] = learnt[key] = int(cached)
    created = 0
    fresh: dict[bytes, int] = {}
    if still:
        fresh, created = _resolve_in_database(org_id, still, host_of, units or {})
        for key, digest in still:
            ids[key] = learnt[key] = fresh[digest]

    def fill_caches() -> None:
        if len(local) + len(learnt) > LOCAL_CACHE_MAX:
            local.clear()
        for key, series_id in learnt.items():
            local[(scope, key)] = series_id
        if fresh:
            _redis_store(scope, fresh)

    transaction.on_commit(fill_caches)
    return ids, created


def _resolve_in_database(
    org_id: int,
    wanted: list[tuple[SeriesKey, bytes]],
    host_of: Callable[[SeriesKey], int | None],
    units: dict[SeriesKey, str],
) -> tuple[dict[bytes, int], int]:
    import json

    params = {
        "org": org_id,
        "names": [key[0] for key, _ in wanted],
        "labels": [json.dumps(dict(key[1]), ensure_ascii=False) for key, _ in wanted],
        "hashes": [digest for _, digest in wanted],
        "hosts": [host_of(key) for key, _ in wanted],
        "units": [units.get(key, "") for key, _ in wanted],
    }
    found: dict[bytes, int] = {}
    with connection.cursor() as cursor:
        cursor.execute(_INSERT_SQL, params)
        for series_id, digest in cursor.fetchall():
            found[bytes(digest)] = series_id
        created = len(found)
        rest = [digest for _, digest in wanted if digest not in found]
        if rest:
            cursor.execute(_SELECT_SQL, [org_id, rest])
            for series_id, digest in cursor.fetchall():
                found[bytes(digest)] = series_id
    missing = [key for key, digest in wanted if digest not in found]
    if missing:  # cannot happen unless a series is deleted mid-request
        raise RuntimeError(f"series vanished while resolving: {missing[:3]}")
    return found, created


def _redis_lookup(scope: str, hashes: list[bytes]) -> list[Any]:
    try:
        return _redis().hmget(redis_key(scope), hashes)
    except Exception as exc:  # Redis down: fall through to PostgreSQL (DESIGN "Redis")
        logger.warning("series cache unavailable, resolving in PostgreSQL: %s", exc)
        return [None] * len(hashes)


def _redis_store(scope: str, fresh: dict[bytes, int]) -> None:
    try:
        _redis().hset(redis_key(scope), mapping=fresh)
    except Exception as exc:
        logger.warning("series cache unavailable, not storing %d ids: %s", len(fresh), exc)


def forget_local_cache() -> None:
    """Drop the in-process caches (tests, or after deleting series)."""
    _local.clear()
