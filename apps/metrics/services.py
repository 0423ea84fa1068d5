"""Metrics write use-cases: store one parsed request (``ingest``) and Prometheus metadata.

Ingest is deliberately not audited: it runs thousands of times a minute and the samples are their own
record. What it creates that people care about (hosts) is audited by ``apps.hosts.services``. What
happens after a request commits (hot tier, hosts seen, alert evaluation) is not ingest's business: it
describes the request in one ``hooks.IngestBatch`` for the consumers ``FIBERSTACK_INGEST_CONSUMERS`` names.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.conf import settings
from django.db import connection, transaction

from apps.metrics import hooks, storage
from apps.metrics.ingest.types import MetricMetadata, ParseError, ParseResult, SeriesKey
from apps.metrics.ingest.validation import host_of as _host_from_labels
from apps.metrics.ingest.validation import strip_port  # noqa: F401  (re-exported)
from apps.metrics.rollups import invalidation
from apps.metrics.series import resolve_series

DEFAULT_HOST_LABELS = ("host", "hostname", "node_id", "instance")
Labels = tuple[tuple[str, str], ...]


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
    transaction (the door's 2xx means committed); after commit one ``IngestBatch`` goes to the ingest
    consumers (``apps.metrics.hooks``). The late-data invalidation log is the exception: it is written
    inside the transaction, because an after-commit consumer that failed (or a process that died between
    commit and hook) would lose invalidations, and a rollup tier would then keep stale buckets for good.
    Raises ``apps.hosts.services.UnknownHostsError`` (nothing stored) when the organization
    does not auto-register hosts and the request names unknown ones."""
    from apps.hosts.services import resolve_hosts

    organization = token.organization
    org_id = organization.pk
    summary = IngestSummary(errors=result.errors, skipped=result.skipped)

    unique_keys, sample_positions = key_positions(result)
    unique = dict.fromkeys(unique_keys)
    # Hosts are worked out per labels tuple, not per series: the series of one line-protocol prefix (the
    # ten fields of a TSBS line) share one labels tuple, so the host and inventory of a request's 1,000
    # series come from its 100 distinct label sets.
    label_sets = {id(key[1]): key[1] for key in unique}
    names = host_labels()
    host_of_labels = {ref: _host_from_labels(labels, names) for ref, labels in label_sets.items()}
    host_by_key: dict[SeriesKey, str | None] = {key: host_of_labels[id(key[1])] for key in unique}
    wanted = {name for name in host_of_labels.values() if name} | set(result.hosts)
    host_ids: dict[str, int] = {}
    if wanted:
        labelled = [(labels, host_of_labels[ref]) for ref, labels in label_sets.items()]
        host_ids = resolve_hosts(organization=organization, names=sorted(wanted),
                                 attributes=_host_attributes(labelled, result.hosts) or None, actor=token)
    summary.hosts = sorted(wanted)

    if result.metadata:
        summary.metadata = store_metadata(org_id, result.metadata)

    latest: dict[int, tuple[int, float]] = {}
    host_of_series: dict[int, int | None] = {}
    if unique:
        ids, summary.series_created = resolve_series(
            organization, unique, host_of=lambda key: host_ids.get(host_by_key[key] or ""), units=result.units
        )
        if result.units:
            _update_units(ids, result.units)
        ids_by_position = np.fromiter(map(ids.__getitem__, unique_keys), dtype=np.int32, count=len(unique_keys))
        series_ids = ids_by_position[sample_positions]
        # One conversion of the time column for both the COPY and the late-data check.
        times_us = np.asarray(result.times_us, dtype=np.int64)
        with connection.cursor() as cursor:
            summary.accepted = storage.copy_samples(cursor, times_us, series_ids, result.values, latest=latest)
            # Late samples reach every rollup tier: logged in this transaction, so never lost (not a hook).
            invalidation.record_late(cursor, times_us)
        host_of_series = {ids[key]: host_ids.get(name or "") for key, name in host_by_key.items()}

    hooks.dispatch_on_commit(hooks.IngestBatch.build(
        organization_id=org_id, received_at=now, latest=latest, host_of_series=host_of_series,
        hosts_seen=frozenset(host_ids.values())))
    return summary


def key_positions(result: ParseResult) -> tuple[list[SeriesKey], np.ndarray]:
    """The request's distinct series keys (first-seen order) and, per sample, the position of its key among
    them: what turns resolved series ids into the COPY's id column with one numpy take.

    Series keys are nested tuples whose hash CPython recomputes on every lookup (~180 ns for a TSBS key),
    and parsers hand out one interned object per series: so samples are mapped by object identity (an int
    hash) and only the distinct objects are hashed by value. Line protocol goes further and hands over its
    ``runs`` (one key tuple per line, the same cached tuple for every line of one field set): a request's
    5,000 lines then cost a lookup per line and numpy per sample, not two dict lookups per sample (~10 %
    of a worker's CPU on TSBS bodies, bench/README.md "Faster doors")."""
    keys = result.keys
    if result.runs is not None:
        return _positions_from_runs(result.runs, len(keys))
    # ``keys`` stays referenced for the whole call, so no id is reused by another object meanwhile.
    objects = dict(zip(map(id, keys), keys, strict=True))
    position = {key: i for i, key in enumerate(dict.fromkeys(objects.values()))}
    position_of_object = {oid: position[key] for oid, key in objects.items()}
    positions = np.fromiter(map(position_of_object.__getitem__, map(id, keys)), dtype=np.intp, count=len(keys))
    return list(position), positions


def _positions_from_runs(runs: list[tuple[SeriesKey, ...]], total: int) -> tuple[list[SeriesKey], np.ndarray]:
    """``key_positions`` from the runs: positions worked out once per distinct run, then laid out per line."""
    distinct = dict(zip(map(id, runs), runs, strict=True))
    run_number = {oid: i for i, oid in enumerate(distinct)}
    position: dict[SeriesKey, int] = {}
    for run in distinct.values():
        for key in run:
            position.setdefault(key, len(position))
    flat = np.fromiter((position[key] for run in distinct.values() for key in run), dtype=np.intp)
    lengths = np.fromiter(map(len, distinct.values()), dtype=np.intp, count=len(distinct))
    offsets = np.cumsum(lengths) - lengths
    line_run = np.fromiter(map(run_number.__getitem__, map(id, runs)), dtype=np.intp, count=len(runs))
    line_lengths = lengths[line_run]
    # Sample j of a line that starts at sample s reads flat[offset of its run + (j - s)].
    shift = np.repeat(offsets[line_run] - (np.cumsum(line_lengths) - line_lengths), line_lengths)
    positions = flat[shift + np.arange(total, dtype=np.intp)]
    return list(position), positions


def _host_attributes(labelled: list[tuple[Labels, str | None]],
                     explicit: dict[str, dict[str, object]]) -> dict[str, dict[str, object]]:
    """Inventory attributes per host: what the series' labels say (``datacenter``, ``region``,
    ``environment`` …, the hosts app's table), overridden by what the payload states about the host.
    ``labelled`` is the request's distinct label sets in order of appearance with their host (the first
    value seen for a field wins, so a label set seen again would change nothing)."""
    from apps.hosts.services import add_inventory_from_labels, inventory_labels

    table = inventory_labels()
    attributes: dict[str, dict[str, object]] = {}
    if table:
        for labels, host in labelled:
            if host:
                add_inventory_from_labels(attributes.setdefault(host, {}), labels, table)
    for host, attrs in explicit.items():
        attributes[host] = {**attributes.get(host, {}), **attrs}
    return {host: attrs for host, attrs in attributes.items() if attrs}


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
