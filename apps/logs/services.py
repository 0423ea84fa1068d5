"""Logs write use-cases: store a request's entries (``ingest_entries``) and events (``ingest_events``), and
an organization's retention (``set_log_retention``).

Like metrics ingest, not audited: it runs thousands of times a minute and the rows are their own record.
One transaction per request (the door's 2xx means committed); the live tail hears about it on commit."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from apps.audit.services import record_event, snapshot
from apps.hosts.models import Host
from apps.logs import es, live, storage
from apps.logs.documents import Window, context_json
from apps.logs.models import LogRetention

_HOST, _HOST_ID, _ORG = 3, 2, 1  # positions in storage.ENTRY_COLUMNS / EVENT_COLUMNS


@dataclass(slots=True)
class StoreSummary:
    """Rows written by one request."""

    stored: int = 0
    first_id: int | None = None
    hosts: list[str] = field(default_factory=list)


def window(now: dt.datetime | None = None) -> Window:
    """The times ingest accepts: no older than FIBERSTACK_LOGS_MAX_PAST_S, no further ahead than
    FIBERSTACK_INGEST_MAX_FUTURE_S (partitions exist for that range; see apps/logs/storage.py)."""
    now = now or timezone.now()
    past = int(getattr(settings, "FIBERSTACK_LOGS_MAX_PAST_S", 7 * 86400))
    future = int(getattr(settings, "FIBERSTACK_INGEST_MAX_FUTURE_S", 600))
    return Window(now=now, earliest=now - dt.timedelta(seconds=past), latest=now + dt.timedelta(seconds=future),
                  max_chars=int(getattr(settings, "FIBERSTACK_LOGS_MAX_ENTRY_BYTES", 256 * 1024)))


def _host_ids(organization_id: int, names: set[str]) -> dict[str, int]:
    """Known hosts by name. Logs never register hosts: a shipper names hosts metrics agents may not know
    (network gear, containers), and an unknown name must not cost the entry."""
    if not names:
        return {}
    return dict(Host.objects.filter(organization_id=organization_id, name__in=names).values_list("name", "pk"))


def _with_org(rows: Sequence[tuple[Any, ...]], organization_id: int) -> list[tuple[Any, ...]]:
    host_ids = _host_ids(organization_id, {row[_HOST] for row in rows if row[_HOST]})
    return [(row[0], organization_id, host_ids.get(row[_HOST]), *row[3:]) for row in rows]


def _reserve_ids(spec: storage.TableSpec, count: int) -> list[int]:
    """Ids for rows about to be copied, when something after commit must find exactly them."""
    with connection.cursor() as cursor:
        # The table name comes from storage's constants, never from input.
        cursor.execute(f"SELECT nextval('{spec.table}_id_seq') FROM generate_series(1, %s)", [count])  # noqa: S608
        return [row[0] for row in cursor.fetchall()]


def _copy_for_index(spec: storage.TableSpec, columns: Sequence[str], rows: list[tuple[Any, ...]],
                    organization_id: int, family: str) -> None:
    """COPY with reserved ids and, after commit, queue their copy to Elasticsearch (``logs.index_rows``):
    the write never waits on Elasticsearch and an outage only delays the copy."""
    ids = _reserve_ids(spec, len(rows))
    _copy(spec, (*columns, "id"), [(*row, i) for row, i in zip(rows, ids, strict=True)])
    times = [row[0] for row in rows]
    transaction.on_commit(lambda: _queue_indexing(family, organization_id, ids, min(times), max(times)),
                          robust=True)


def _copy(spec: storage.TableSpec, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
    storage.ensure_days(spec, {row[0].astimezone(dt.UTC).date() for row in rows})
    with connection.cursor() as cursor, cursor.copy(
        f"COPY {spec.table} ({', '.join(columns)}) FROM STDIN"
    ) as copy:
        for row in rows:
            copy.write_row(row)


@transaction.atomic
def ingest_entries(*, organization_id: int, rows: Sequence[tuple[Any, ...]]) -> StoreSummary:
    """COPY the rows (``storage.ENTRY_COLUMNS`` order, from ``documents.to_row``) into ``logs_entry``; the
    newest FIBERSTACK_LOGS_LIVE_MAX_ENTRIES go to the live tail after commit."""
    if not rows:
        return StoreSummary()
    stored = _with_org(rows, organization_id)
    if es.enabled():
        _copy_for_index(storage.ENTRIES, storage.ENTRY_COLUMNS, stored, organization_id, "logs")
    else:
        _copy(storage.ENTRIES, storage.ENTRY_COLUMNS, stored)
    newest = sorted(stored, key=lambda row: row[0])[-int(getattr(settings, "FIBERSTACK_LOGS_LIVE_MAX_ENTRIES", 200)):]
    payload = [live_payload(row) for row in newest]
    transaction.on_commit(lambda: live.broadcast_entries(organization_id, payload), robust=True)
    return StoreSummary(stored=len(stored), hosts=sorted({row[_HOST] for row in stored if row[_HOST]}))


def _queue_indexing(family: str, organization_id: int, ids: list[int], start: dt.datetime, end: dt.datetime) -> None:
    from apps.logs.tasks import index_rows

    index_rows.apply_async((family, organization_id, ids, start.isoformat(), end.isoformat()),
                           queue=getattr(settings, "FIBERSTACK_LOGS_ES_QUEUE", "") or None)


def live_payload(row: tuple[Any, ...]) -> dict[str, Any]:
    """What the live tail shows of one entry (JSON-safe)."""
    values = dict(zip(storage.ENTRY_COLUMNS, row, strict=True))
    return {"time": values["time"].isoformat(), "host": values["host"], "service": values["service"],
            "level": values["level"], "program": values["program"], "message": values["message"][:4000]}


@transaction.atomic
def ingest_events(*, organization_id: int, rows: Sequence[tuple[Any, ...]]) -> StoreSummary:
    """COPY event rows (``storage.EVENT_COLUMNS`` order) into ``logs_event``."""
    if not rows:
        return StoreSummary()
    stored = _with_org(rows, organization_id)
    if es.enabled():
        _copy_for_index(storage.EVENTS, storage.EVENT_COLUMNS, stored, organization_id, "events")
    else:
        _copy(storage.EVENTS, storage.EVENT_COLUMNS, stored)
    return StoreSummary(stored=len(stored), hosts=sorted({row[_HOST] for row in stored if row[_HOST]}))


def record_host_event(*, organization_id: int, kind: str, title: str, host: str = "", message: str = "",
                      level: str = "info", source: str = "", context: dict[str, Any] | None = None,
                      when: dt.datetime | None = None) -> StoreSummary:
    """One event from code (alert transitions, deploy hooks): the function higher floors call."""
    return record_host_events(organization_id=organization_id, source=source, when=when, events=[
        {"kind": kind, "title": title, "host": host, "message": message, "level": level, "context": context}])


def record_host_events(*, organization_id: int, events: Sequence[dict[str, Any]], source: str = "",
                       when: dt.datetime | None = None) -> StoreSummary:
    """Many events from code in one write (an alert storm's transitions): each a dict of
    :func:`record_host_event`'s keywords ``kind``, ``title`` and optionally ``host``, ``message``,
    ``level``, ``context``."""
    at = when or timezone.now()
    rows = [(at, None, None, e.get("host", ""), e["kind"], e.get("level", "info"), e["title"], e.get("message", ""),
             source, context_json(e.get("context") or {})) for e in events]
    return ingest_events(organization_id=organization_id, rows=rows)


@transaction.atomic
def set_log_retention(*, organization: Any, actor: Any, **days: int | None) -> LogRetention:
    """Set the organization's ``logs_days`` / ``events_days`` (None: back to the default), audited. The
    caller has checked them against the plan (``retention.plan_max_days``); storage applies them on the
    next ``logs.maintain_storage`` and searches at once."""
    current, _ = LogRetention.objects.select_for_update().get_or_create(organization=organization)
    before = snapshot(current)
    for name, value in days.items():
        setattr(current, name, value)
    current.save()
    record_event(action="log_retention.updated", actor=actor, organization=organization, target=current,
                 before=before, after=snapshot(current))
    return current
