"""Write use-cases for the series catalogue that are not ingest: deleting series by hand (the admin).

Series are never renamed: a series *is* its (name, labels) key -- the unique key hash, every id cache
and the read API's catalogue rely on it -- and agents keep pushing the name they know, so a "renamed"
series would only be re-created under the old name on the next push. To rename a metric, change the
agents (or relabel at the source) and delete the old series.

Deleting removes the catalogue row, audited in the same transaction. After commit it evicts the row
from the caches that hold its id: the organization's Redis hash of the series resolver, the hot tier,
and this process's resolver dict and read catalogue. Other web processes' resolver dicts are not
reachable from here; an agent still pushing the deleted key to one of them writes samples under the
old id (invisible, since no series row names it) until that process restarts or runs
``flush_metrics_caches`` -- delete series once their agents stopped sending them. Raw samples and rollups
of a deleted series are not rewritten (never row-by-row DELETE on raw data, DESIGN "Metrics storage");
retention drops them with their partitions."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django_redis import get_redis_connection

from apps.audit.services import record_event, snapshot
from apps.hosts.cache_scope import org_scope
from apps.metrics import hot
from apps.metrics import series as resolver
from apps.metrics.models import Series
from apps.metrics.read.catalogue import CATALOGUE

logger = logging.getLogger(__name__)


def _evict(scopes: dict[int, str], deleted: list[tuple[int, int | None, int, bytes]]) -> None:
    """Drop deleted series from the shared (Redis) and this process's caches; best effort, like the
    caches themselves (DESIGN "Redis")."""
    by_org: dict[int, list[tuple[int, int | None, bytes]]] = defaultdict(list)
    for org_id, host_id, series_id, key_hash in deleted:
        by_org[org_id].append((series_id, host_id, key_hash))
    try:
        pipe = get_redis_connection("default").pipeline(transaction=False)
        for org_id, rows in by_org.items():
            pipe.hdel(resolver.redis_key(scopes[org_id]), *[key_hash for _, _, key_hash in rows])
            pipe.hdel(hot.org_key(org_id), *[series_id for series_id, _, _ in rows])
            for series_id, host_id, _ in rows:
                if host_id is not None:
                    pipe.hdel(hot.host_key(org_id, host_id), series_id)
        pipe.execute()
    except Exception as exc:
        logger.warning("could not evict %d deleted series from Redis: %s", len(deleted), exc)
    resolver.forget_local_cache()
    CATALOGUE.clear()


@transaction.atomic
def delete_series(*, series: Iterable[Series], actor: Any) -> int:
    """Delete catalogue rows (one or many, all-or-nothing), each audited as ``series.deleted``; returns
    how many were deleted."""
    rows = list(Series.objects.select_for_update(of=("self",)).filter(pk__in=[s.pk for s in series])
                .select_related("organization"))
    scopes: dict[int, str] = {}
    deleted: list[tuple[int, int | None, int, bytes]] = []
    for row in rows:
        if row.organization_id not in scopes:
            scopes[row.organization_id] = org_scope(row.organization)
        record_event(action="series.deleted", actor=actor, organization=row.organization_id, target=row,
                     before=snapshot(row, exclude=["key_hash"]))
        deleted.append((row.organization_id, row.host_id, row.pk, bytes(row.key_hash)))
    Series.objects.filter(pk__in=[row.pk for row in rows]).delete()
    if deleted:
        transaction.on_commit(lambda: _evict(scopes, deleted))
    return len(deleted)
