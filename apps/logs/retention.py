"""Retention of entries and events: defaults FIBERSTACK_LOGS_RETENTION_DAYS (30) and
FIBERSTACK_EVENTS_RETENTION_DAYS (90), per-organization overrides in ``LogRetention``.

As for metrics (apps/metrics/retention.py): partitions are shared by all organizations, so storage keeps
each table for the longest retention any active organization has (and never less than ingest's
accepted past, so no partition ingest may still write is dropped) and drops whole partitions or chunks;
searches never show an organization rows older than its own retention (``visible_since``). Rows of
organizations with a shorter retention are deleted in bounded batches."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from apps.logs import storage
from apps.logs.models import LogRetention

KINDS = {"logs": storage.ENTRIES, "events": storage.EVENTS}


def default_days(kind: str) -> int:
    name = "FIBERSTACK_LOGS_RETENTION_DAYS" if kind == "logs" else "FIBERSTACK_EVENTS_RETENTION_DAYS"
    return int(getattr(settings, name, 30 if kind == "logs" else 90))


def retention_days(organization_id: int, kind: str) -> int:
    override = (LogRetention.objects.filter(organization_id=organization_id)
                .values_list(f"{kind}_days", flat=True).first())
    return int(override or default_days(kind))


def visible_since(organization_id: int, kind: str, now: dt.datetime | None = None) -> dt.datetime:
    return (now or timezone.now()) - dt.timedelta(days=retention_days(organization_id, kind))


def _overrides(kind: str) -> dict[int, int]:
    return {org_id: days for org_id, days in LogRetention.objects.filter(organization__is_active=True)
            .exclude(**{f"{kind}_days": None}).values_list("organization_id", f"{kind}_days")}


def keep_days(kind: str) -> int:
    """Days storage keeps: the longest retention of any organization, at least ingest's accepted past."""
    past = math.ceil(int(getattr(settings, "FIBERSTACK_LOGS_MAX_PAST_S", 7 * 86400)) / 86400)
    return max(default_days(kind), *_overrides(kind).values(), past)


def apply_retention(now: dt.datetime | None = None, batch: int | None = None) -> dict[str, Any]:
    """Drop expired partitions of both tables, trim organizations with shorter retention (bounded) and
    create partitions ahead. Returns what it did."""
    now = now or timezone.now()
    batch = batch or int(getattr(settings, "FIBERSTACK_RETENTION_DELETE_BATCH", 10_000))
    report: dict[str, Any] = {}
    for kind, spec in KINDS.items():
        longest = keep_days(kind)
        with transaction.atomic():
            dropped = storage.drop_before(spec, now - dt.timedelta(days=longest))
        deleted = 0
        default = default_days(kind)
        for org_id, days in _overrides(kind).items():
            if days < longest:
                deleted += _trim(spec, org_id, now - dt.timedelta(days=days), batch)
        if default < longest:  # organizations without an override keep the default
            deleted += _trim_defaults(spec, kind, now - dt.timedelta(days=default), batch)
        report[kind] = {"keep_days": longest, "dropped": dropped, "deleted_rows": deleted}
    ahead = int(getattr(settings, "FIBERSTACK_PARTITIONS_AHEAD", 3))
    with transaction.atomic():
        report["partitions_created"] = storage.ensure_range(now - dt.timedelta(days=1), now + dt.timedelta(days=ahead))
    return report


def _trim(spec: storage.TableSpec, org_id: int, cutoff: dt.datetime, batch: int) -> int:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {spec.table} WHERE (time, id) IN (SELECT time, id FROM {spec.table} "  # noqa: S608
            "WHERE organization_id = %s AND time < %s LIMIT %s)", [org_id, cutoff, batch])
        return cursor.rowcount


def _trim_defaults(spec: storage.TableSpec, kind: str, cutoff: dt.datetime, batch: int) -> int:
    overridden = list(LogRetention.objects.exclude(**{f"{kind}_days": None}).values_list("organization_id",
                                                                                            flat=True))
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {spec.table} WHERE (time, id) IN (SELECT time, id FROM {spec.table} "  # noqa: S608
            "WHERE time < %s AND NOT (organization_id = ANY(%s)) LIMIT %s)", [cutoff, overridden, batch])
        return cursor.rowcount
