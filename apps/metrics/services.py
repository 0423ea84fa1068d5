"""Metrics write use-cases: store one parsed request (``ingest``) and Prometheus metadata.

Ingest is deliberately not audited: it runs thousands of times a minute and the samples are their own
record. What it creates that people care about (hosts) is audited by ``apps.hosts.services``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import connection, transaction

from apps.core import redis
from apps.hosts import cache_scope
from apps.metrics import hot, storage
from apps.metrics.ingest.types import MetricMetadata, ParseError, ParseResult, SeriesKey
from apps.metrics.ingest.validation import host_of as _host_from_labels
from apps.metrics.ingest.validation import strip_port  # noqa: F401  (re-exported)
from apps.metrics.rollups import invalidation
from apps.metrics.series import resolve_series

logger = logging.getLogger(__name__)

DEFAULT_HOST_LABELS = ("host", "hostname", "node_id", "instance")


@dataclass(slots=True)
class IngestSummary:
    """What one request stored; the doors turn it into their wire's reply."""

    accepted: int = 0
    series_created: int = 0
    metadata: int = 0
    hosts: list[str] = field(default_factory=list)
    errors: list[ParseError] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)


def host_labels() -> tuple[str, ...]:
    return tuple(getattr(settings, "FIBERSTACK_HOST_LABELS", DEFAULT_HOST_LABELS))


# ``_host_from_labels`` lives with the ingest validation, which checks exactly the host it picks.
def host_name_of(labels: tuple[tuple[str, str], ...]) -> str | None:
    """The host a series belongs to: the first of ``FIBERSTACK_HOST_LABELS`` present (port stripped
    from ``instance``), or None for series that belong to no host."""
    return _host_from_labels(labels, host_labels())


@transaction.atomic
def ingest(*, token: Any, result: ParseResult, now: dt.datetime) -> IngestSummary:
    """Store one parsed request: hosts, then series, then a binary COPY of the samples, all in one
    transaction (the door's 2xx means committed); hot values, host last_seen and the live event follow
    on commit. Raises ``apps.hosts.services.UnknownHostsError`` (nothing stored) when the organization
    does not auto-register hosts and the request names unknown ones."""
    from apps.hosts.services import resolve_hosts

    organization = token.organization
    org_id = organization.pk
    summary = IngestSummary(errors=result.errors, skipped=result.skipped)

    # Series keys are nested tuples whose hash CPython recomputes on every lookup (~180 ns for a TSBS key),
    # and parsers hand out one interned object per series: so samples are mapped by object identity (an
    # int hash) and only the distinct objects are hashed by value. ``keys`` stays referenced, so ids
    # cannot be reused by other objects meanwhile.
    keys = result.keys
    objects = dict(zip(map(id, keys), keys, strict=True))
    unique = dict.fromkeys(objects.values())
    names = host_labels()
    host_by_key: dict[SeriesKey, str | None] = {key: _host_from_labels(key[1], names) for key in unique}
    wanted = {name for name in host_by_key.values() if name} | set(result.hosts)
    host_ids: dict[str, int] = {}
    if wanted:
        host_ids = resolve_hosts(organization=organization, names=sorted(wanted),
                                 attributes=result.hosts or None, actor=token)
    summary.hosts = sorted(wanted)

    if result.metadata:
        summary.metadata = store_metadata(org_id, result.metadata)

    if unique:
        ids, summary.series_created = resolve_series(
            organization, unique, host_of=lambda key: host_ids.get(host_by_key[key] or ""), units=result.units
        )
        if result.units:
            _update_units(ids, result.units)
        id_of_object = {oid: ids[key] for oid, key in objects.items()}
        series_ids = list(map(id_of_object.__getitem__, map(id, keys)))
        latest: dict[int, tuple[int, float]] = {}
        with connection.cursor() as cursor:
            summary.accepted = storage.copy_samples(cursor, result.times_us, series_ids, result.values,
                                                    latest=latest)
            # Late samples reach every rollup tier: logged in this transaction, so never lost.
            invalidation.record_late(cursor, result.times_us)
        host_of_series = {ids[key]: host_ids.get(name or "") for key, name in host_by_key.items()}
        transaction.on_commit(lambda: hot.store_latest(org_id, latest, host_of_series), robust=True)

    seen = sorted(set(host_ids.values()))
    if seen:
        transaction.on_commit(lambda: _after_commit(org_id, seen, now), robust=True)
    return summary


def _update_units(ids: dict[SeriesKey, int], units: dict[SeriesKey, str]) -> None:
    """JSON doors may send a unit with every sample; write it only where it changed (one statement)."""
    pairs = [(ids[key], unit) for key, unit in units.items() if key in ids and unit]
    if not pairs:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE metrics_series s SET unit = u.unit, updated_at = now()
            FROM unnest(%s::int4[], %s::text[]) AS u(id, unit)
            WHERE s.id = u.id AND s.unit IS DISTINCT FROM u.unit
            """,
            [[p[0] for p in pairs], [p[1] for p in pairs]],
        )


def store_metadata(org_id: int, metadata: list[MetricMetadata]) -> int:
    """Upsert Prometheus metric-family metadata and copy it onto existing series of those names."""
    latest: dict[str, MetricMetadata] = {meta.name: meta for meta in metadata}
    rows = list(latest.values())
    params = [
        org_id,
        [m.name for m in rows],
        [m.type for m in rows],
        [m.help for m in rows],
        [m.unit for m in rows],
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO metrics_metricfamily (organization_id, name, type, help, unit, created_at, updated_at)
            SELECT %s, m.name, m.type, m.help, m.unit, now(), now()
            FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[]) AS m(name, type, help, unit)
            ORDER BY m.name
            ON CONFLICT (organization_id, name) DO UPDATE
                SET type = excluded.type, help = excluded.help, unit = excluded.unit, updated_at = now()
                WHERE (metrics_metricfamily.type, metrics_metricfamily.help, metrics_metricfamily.unit)
                      IS DISTINCT FROM (excluded.type, excluded.help, excluded.unit)
            """,
            params,
        )
        cursor.execute(
            """
            UPDATE metrics_series s SET type = m.type, help = m.help,
                   unit = CASE WHEN m.unit <> '' THEN m.unit ELSE s.unit END, updated_at = now()
            FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[]) AS m(name, type, help, unit)
            WHERE s.organization_id = %s AND s.name = m.name
              AND (s.type, s.help) IS DISTINCT FROM (m.type, m.help)
            """,
            [*params[1:], org_id],
        )
    return len(rows)


def _after_commit(org_id: int, host_ids: list[int], now: dt.datetime) -> None:
    """Host last_seen and a live event, for each host at most once per FIBERSTACK_HOST_BROADCAST_INTERVAL
    (one Redis pipeline decides which hosts are due). mark_hosts_seen keeps its own coarser resolution
    (one more pipeline), so calling it only for due hosts skips that round trip on most requests without
    making last_seen staler. Redis round trips per request stay constant whatever the number of hosts
    (tests/metrics/test_ingest_redis.py). With Redis down every host is marked (fail open) and no live
    event is sent."""
    from apps.hosts.services import mark_hosts_seen

    due = _claim_hosts(org_id, host_ids)
    mark_hosts_seen(organization_id=org_id, host_ids=host_ids if due is None else due, when=now)
    if not due:
        return
    from apps.hosts.live import broadcast_hosts_update, host_payload
    from apps.hosts.models import Host

    hosts = [Host(organization_id=org_id, public_id=public_id, name=name, last_seen_at=now)
             for public_id, name in Host.objects.filter(organization_id=org_id, pk__in=due)
             .values_list("public_id", "name")]
    if hosts:
        broadcast_hosts_update(org_id, {"hosts": [host_payload(host, now) for host in hosts]})


def _claim_hosts(org_id: int, host_ids: list[int]) -> list[int] | None:
    """The hosts due for last_seen and a live event: one Redis ``SET NX EX`` per host, in one pipeline;
    None when Redis is unavailable."""
    interval = int(getattr(settings, "FIBERSTACK_HOST_BROADCAST_INTERVAL", 5))
    prefix = settings.CACHES["default"].get("KEY_PREFIX", "")
    epoch = cache_scope.epoch()
    try:
        pipe = redis.client().pipeline(transaction=False)
        for host_id in host_ids:
            pipe.set(f"{prefix}:metrics:live:{epoch}:{org_id}:{host_id}", 1, nx=True, ex=interval)
        return [host_id for host_id, ok in zip(host_ids, pipe.execute(), strict=True) if ok]
    except Exception as exc:
        logger.warning("live host updates skipped, Redis unavailable: %s", exc)
        return None

