"""Retention per storage tier, per organization, within its plan.

Defaults (days): raw 7, 1m 30, 5m 90, 1h 365, 1d 730 (setting ``FIBERSTACK_RETENTION_DAYS`` may
override any of them). An organization may set ``retention_<tier>_days``; the value is clamped to its
plan's ceiling (``PLAN_MAX_DAYS``, setting ``FIBERSTACK_RETENTION_PLAN_MAX_DAYS``).

Mechanism -- partitions and chunks are shared by every organization, so:

1. **Storage** keeps each tier for the LONGEST retention any active organization has for it and drops
   whole partitions (plain PostgreSQL: ``DETACH PARTITION`` then ``DROP TABLE`` for partitions whose
   upper bound is at or before the cutoff) or chunks (TimescaleDB: ``drop_chunks(older_than => cutoff)``).
   Raw samples are never deleted row by row; the raw DEFAULT partition is never dropped (its rows are
   moved into daily partitions by ``metrics.ensure_partitions``).
2. **Queries** never return data older than the asking organization's own retention for the tier that
   answers: ``visible_since`` clamps the start of every range (``apps.metrics.read.plan``).
3. **Rollup tiers only**: rows of an organization with a shorter retention than the longest are also
   deleted, in bounded batches (``FIBERSTACK_RETENTION_DELETE_BATCH`` rows per organization and tier
   per run), so their storage shrinks too; step 2 already hides them meanwhile.

The same job creates rollup partitions ahead (plain PostgreSQL), like ``metrics.ensure_partitions``
does for raw. On TimescaleDB ``compress_raw_chunks`` compresses raw chunks older than
``FIBERSTACK_COMPRESS_AFTER_DAYS`` (3) -- explicitly from the job rather than with
``add_compression_policy``, so installations without TimescaleDB background workers compress too; on
plain PostgreSQL closed raw and rollup partitions are compressed by ``apps.metrics.compression``
instead, and compressed chunks past a tier's cutoff are deleted here with the partitions (a shorter-
retention organization's compressed rollup chunks once wholly past its cutoff)."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from apps.metrics import storage as raw_storage
from apps.metrics.rollups import compressed as rollup_compressed
from apps.metrics.rollups import storage as rollup_storage
from apps.metrics.rollups.tiers import BY_NAME, DEFAULT_RETENTION_DAYS, RAW_NAME, TIER_NAMES, TIERS
from apps.metrics.storage import compressed, ddl

logger = logging.getLogger(__name__)

PLAN_MAX_DAYS: dict[str, dict[str, int]] = {
    "free": {"raw": 7, "1m": 30, "5m": 90, "1h": 365, "1d": 730},
    "team": {"raw": 14, "1m": 60, "5m": 180, "1h": 730, "1d": 1095},
    "enterprise": {"raw": 30, "1m": 90, "5m": 365, "1h": 1095, "1d": 1825},
}


def default_days(tier: str) -> int:
    overrides = getattr(settings, "FIBERSTACK_RETENTION_DAYS", None) or {}
    return int(overrides.get(tier, DEFAULT_RETENTION_DAYS[tier]))


def plan_max_days(plan: str, tier: str) -> int:
    table = getattr(settings, "FIBERSTACK_RETENTION_PLAN_MAX_DAYS", None) or PLAN_MAX_DAYS
    limits = table.get(plan) or table["free"]
    return int(limits.get(tier, default_days(tier)))


def _field(tier: str) -> str:
    return f"retention_{tier}_days"


def effective_days(plan: str, override: int | None, tier: str) -> int:
    """The organization's retention for ``tier``: its override (or the default), capped by the plan."""
    wanted = override if override else default_days(tier)
    return max(1, min(int(wanted), plan_max_days(plan, tier)))


def retention_days(organization: Any, tier: str) -> int:
    return effective_days(organization.plan, getattr(organization, _field(tier)), tier)


def visible_since(organization: Any, tier: str, now: dt.datetime | None = None) -> dt.datetime:
    """Oldest instant of ``tier`` the organization may read."""
    return (now or timezone.now()) - dt.timedelta(days=retention_days(organization, tier))


def longest_days(tier: str) -> int:
    """The longest retention any active organization has for ``tier`` (the default when none exists)."""
    from apps.organizations.models import Organization

    combos = Organization.objects.filter(is_active=True).values_list("plan", _field(tier)).distinct()
    return max((effective_days(plan, override, tier) for plan, override in combos), default=default_days(tier))


def _table(tier: str) -> str:
    return raw_storage.TABLE if tier == RAW_NAME else BY_NAME[tier].table


def drop_expired(tier: str, cutoff: dt.datetime) -> list[str]:
    """Drop the partitions (or chunks) of ``tier`` that hold only data before ``cutoff``; also the
    compressed chunks (plain PostgreSQL) that do, reported as ``<compressed table>:<n>``."""
    dropped = drop_partitions_before(_table(tier), cutoff)
    with connection.cursor() as cursor:
        if tier == RAW_NAME:
            chunks, name = compressed.drop_chunks_before(cursor, cutoff), compressed.COMPRESSED_TABLE
        else:
            spec = BY_NAME[tier]
            chunks, name = rollup_compressed.drop_chunks_before(cursor, spec, cutoff), rollup_compressed.table(spec)
    if chunks:
        dropped.append(f"{name}:{chunks}")
    return dropped


def drop_partitions_before(table: str, cutoff: dt.datetime) -> list[str]:
    """Drop the partitions (or chunks) of any table stored like the tiers (``apps.logs.storage`` too)
    that hold only data before ``cutoff``; a DEFAULT partition is never dropped."""
    dropped: list[str] = []
    with connection.cursor() as cursor:
        if not rollup_storage.is_partitioned():
            return ddl.drop_chunks(cursor, table, cutoff)
        for name, bounds in sorted(rollup_storage.existing_partitions(cursor, table).items()):
            if bounds is None or bounds[1] > cutoff:
                continue
            ddl.drop_partition(cursor, table, name)
            dropped.append(name)
    return dropped


def trim_organizations(tier: str, now: dt.datetime, longest: int, batch: int) -> int:
    """Rollup tiers: delete up to ``batch`` rows per organization whose retention is shorter than the
    longest (rows the partition drop keeps for others). Bounded, so one run never holds long locks."""
    from apps.organizations.models import Organization

    table = _table(tier)
    deleted = 0
    for org in Organization.objects.filter(is_active=True).only("id", "plan", _field(tier)):
        days = retention_days(org, tier)
        if days >= longest:
            continue
        cutoff = now - dt.timedelta(days=days)
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                DELETE FROM {table} AS t USING (
                    SELECT r.series_id, r.bucket FROM {table} AS r
                    JOIN metrics_series AS m ON m.id = r.series_id
                    WHERE m.organization_id = %s AND r.bucket < %s
                    LIMIT %s
                ) AS d
                WHERE t.series_id = d.series_id AND t.bucket = d.bucket
                """,  # noqa: S608 - table names are ours
                [org.pk, cutoff, batch],
            )
            deleted += cursor.rowcount
            deleted += rollup_compressed.trim_organization(cursor, BY_NAME[tier], org.pk, cutoff)
    return deleted


def apply_retention(now: dt.datetime | None = None) -> dict[str, Any]:
    """Drop expired partitions/chunks of every tier, trim shorter-retention organizations' rollup rows,
    create rollup partitions ahead. Returns what it did, per tier."""
    now = now or timezone.now()
    batch = int(getattr(settings, "FIBERSTACK_RETENTION_DELETE_BATCH", 10_000))
    ahead = dt.timedelta(days=int(getattr(settings, "FIBERSTACK_PARTITIONS_AHEAD", 3)))
    report: dict[str, Any] = {}
    for tier in TIER_NAMES:
        longest = longest_days(tier)
        cutoff = now - dt.timedelta(days=longest)
        with transaction.atomic():
            dropped = drop_expired(tier, cutoff)
        trimmed = 0
        if tier != RAW_NAME:
            with transaction.atomic():
                trimmed = trim_organizations(tier, now, longest, batch)
        report[tier] = {"keep_days": longest, "dropped": dropped, "deleted_rows": trimmed}
        logger.info("retention %s: keep %d days, dropped %s, deleted %d rows", tier, longest, dropped or "none",
                    trimmed)
    created = 0
    with transaction.atomic():
        for spec in TIERS:
            created += rollup_storage.ensure_range(spec, now - dt.timedelta(days=1), now + ahead)
    report["partitions_created"] = created
    return report


def compress_raw_chunks(now: dt.datetime | None = None) -> int | None:
    """TimescaleDB: compress raw chunks older than FIBERSTACK_COMPRESS_AFTER_DAYS; None on plain
    PostgreSQL (nothing to compress)."""
    if rollup_storage.is_partitioned():
        return None
    now = now or timezone.now()
    older = now - dt.timedelta(days=int(getattr(settings, "FIBERSTACK_COMPRESS_AFTER_DAYS", 3)))
    with connection.cursor() as cursor:
        return ddl.compress_chunks(cursor, raw_storage.TABLE, older)


def compress_rollup_chunks(now: dt.datetime | None = None) -> dict[str, int] | None:
    """TimescaleDB: compress the rollup chunks (per tier) that ended FIBERSTACK_COMPRESS_AFTER_DAYS ago --
    closed chunks only; a late re-roll later upserts into them (TimescaleDB's DML on compressed chunks).
    None on plain PostgreSQL (``apps.metrics.compression`` compresses closed partitions there)."""
    if rollup_storage.is_partitioned():
        return None
    now = now or timezone.now()
    older = now - dt.timedelta(days=int(getattr(settings, "FIBERSTACK_COMPRESS_AFTER_DAYS", 3)))
    with connection.cursor() as cursor:
        return {tier.name: ddl.compress_chunks(cursor, tier.table, older) for tier in TIERS}
