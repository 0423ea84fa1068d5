"""Retention of entries and events: defaults FIBERSTACK_LOGS_RETENTION_DAYS (30) and
FIBERSTACK_EVENTS_RETENTION_DAYS (90), per-organization overrides in ``LogRetention`` (set by organization
admins through ``PUT /api/v1/logs/retention``, or in the admin), capped by the organization's plan
(``PLAN_MAX_DAYS``, setting ``FIBERSTACK_LOGS_RETENTION_PLAN_MAX_DAYS``).

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
from apps.organizations.models import Organization

KINDS = {"logs": storage.ENTRIES, "events": storage.EVENTS}
#: The longest retention an organization may choose, per plan (the default never exceeds the free plan's).
PLAN_MAX_DAYS: dict[str, dict[str, int]] = {
    "free": {"logs": 30, "events": 90},
    "team": {"logs": 90, "events": 365},
    "enterprise": {"logs": 365, "events": 1095},
}


def default_days(kind: str) -> int:
    name = "FIBERSTACK_LOGS_RETENTION_DAYS" if kind == "logs" else "FIBERSTACK_EVENTS_RETENTION_DAYS"
    return int(getattr(settings, name, 30 if kind == "logs" else 90))


def plan_max_days(plan: str, kind: str) -> int:
    table = getattr(settings, "FIBERSTACK_LOGS_RETENTION_PLAN_MAX_DAYS", None) or PLAN_MAX_DAYS
    limits = table.get(plan) or table["free"]
    return int(limits.get(kind, default_days(kind)))


def effective_days(plan: str, override: int | None, kind: str) -> int:
    """An organization's retention: its override (or the default), capped by its plan."""
    return max(1, min(int(override or default_days(kind)), plan_max_days(plan, kind)))


def retention_days(organization_id: int, kind: str) -> int:
    found = (Organization.objects.filter(pk=organization_id)
             .values_list("plan", f"log_retention__{kind}_days").first())
    plan, override = found or ("free", None)
    return effective_days(plan, override, kind)


def days_by_organization(kind: str) -> dict[int, int]:
    """Every active organization's effective retention for ``kind``."""
    rows = Organization.objects.filter(is_active=True).values_list("id", "plan", f"log_retention__{kind}_days")
    return {org_id: effective_days(plan, override, kind) for org_id, plan, override in rows}


def visible_since(organization_id: int, kind: str, now: dt.datetime | None = None) -> dt.datetime:
    return (now or timezone.now()) - dt.timedelta(days=retention_days(organization_id, kind))


def _overrides(kind: str) -> dict[int, int]:
    """Organizations with an override, and their effective (plan-capped) days."""
    rows = (LogRetention.objects.filter(organization__is_active=True).exclude(**{f"{kind}_days": None})
            .values_list("organization_id", "organization__plan", f"{kind}_days"))
    return {org_id: effective_days(plan, days, kind) for org_id, plan, days in rows}


def keep_days(kind: str) -> int:
    """Days storage keeps: the longest retention of any organization, at least ingest's accepted past."""
    past = math.ceil(int(getattr(settings, "FIBERSTACK_LOGS_MAX_PAST_S", 7 * 86400)) / 86400)
    return max(default_days(kind), *_overrides(kind).values(), past)


def shorter_retentions(kind: str, longest: int) -> dict[int, list[int]]:
    """Days -> the active organizations keeping ``kind`` for fewer days than storage does."""
    groups: dict[int, list[int]] = {}
    for org_id, days in days_by_organization(kind).items():
        if days < longest:
            groups.setdefault(days, []).append(org_id)
    return groups


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
        for days, org_ids in shorter_retentions(kind, longest).items():
            deleted += _trim(spec, org_ids, now - dt.timedelta(days=days), batch)
        report[kind] = {"keep_days": longest, "dropped": dropped, "deleted_rows": deleted}
    ahead = int(getattr(settings, "FIBERSTACK_PARTITIONS_AHEAD", 3))
    with transaction.atomic():
        report["partitions_created"] = storage.ensure_range(now - dt.timedelta(days=1), now + dt.timedelta(days=ahead))
    return report


def _trim(spec: storage.TableSpec, org_ids: list[int], cutoff: dt.datetime, batch: int) -> int:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {spec.table} WHERE (time, id) IN (SELECT time, id FROM {spec.table} "  # noqa: S608
            "WHERE organization_id = ANY(%s) AND time < %s LIMIT %s)", [org_ids, cutoff, batch])
        return cursor.rowcount
