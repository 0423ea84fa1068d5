"""Compressing closed data: raw and rollup partitions on plain PostgreSQL (``storage.compressed`` and
``rollups.compressed`` do the rewrites; a rollup partition follows the same rules as a raw day), raw and
rollup chunks natively on TimescaleDB (``storage.timescale.compress_due``, ``storage.ddl``).
``compress_raw`` is the one entry point for both (beat task ``metrics.compress_chunks``,
``manage.py compress_raw``).

TimescaleDB: chunks that ended ``older_than`` ago (default ``FIBERSTACK_COMPRESS_AFTER_DAYS``, 3) are
compressed with the hypertables' settings (segment by ``series_id``, order by time: migrations 0003 and
0008), oldest first, at most ``limit`` raw chunks. It does not wait for rollups: a late sample updates a
compressed chunk in place and every reader decompresses transparently, so nothing is rewritten twice.

Plain PostgreSQL:

A day is compressed once it is older than ``FIBERSTACK_COMPRESS_RAW_AFTER_SECONDS`` (default one day after
its end) AND its rollups are final: every tier's effective watermark (dirty ranges included) has passed
its end, the 1m tier's lateness re-roll no longer reaches back into it, and no logged late-data range
overlaps it. Rollups can still re-roll a compressed day later (late samples), because every raw reader
merges chunks with rows; waiting only avoids decoding what is about to be re-read anyway.

One transaction per partition, oldest first: a run that stops (crash, deploy) leaves every day either
compressed or untouched, and the next run carries on. Runs from the beat task ``metrics.compress_chunks``
and ``manage.py compress_raw``; both hold the retention lock (compressing a partition retention is
dropping would fail) and, per partition or hour, the rollup lock (a rollup step never waits on a day's
rewrite half-way; readers are kept consistent by ``storage.compressed.read_params``).

Closed hours of open rollup partitions (``HOURLY_TIERS``: the 1m tier, whose day partition would otherwise
hold up to two days of ~32 B/value rows; a coarser tier's open partition is small per raw value already): an
hour that ended ``FIBERSTACK_ROLLUP_COMPRESS_HOURS_AFTER`` ago (default 1 h, six times the 10-minute lateness
re-roll) and whose rollups are final by the same rule as a day is compressed into per-series chunks and its
rows deleted (``rollups.compressed.compress_range``), one transaction per hour, oldest first, after the
whole partitions; the day's ``compress_partition`` folds those chunks into one per series later. A late
re-roll into a compressed hour writes rows again (rows win), and the next run merges them."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.utils import timezone

from apps.core.locks import ADVISORY_LOCK_KEYS, advisory_lock
from apps.metrics import storage as raw_storage
from apps.metrics.rollups import compressed as rollup_compressed
from apps.metrics.rollups import storage as rollup_storage
from apps.metrics.rollups.invalidation import lateness
from apps.metrics.rollups.models import RollupInvalidation, RollupState
from apps.metrics.rollups.tiers import BY_NAME, TIERS, TierSpec, floor_time
from apps.metrics.storage import compressed, ddl, partitioned, timescale

logger = logging.getLogger(__name__)
T = TypeVar("T")

# The tiers whose open partitions get their closed hours compressed (``compress_rollup_hours``).
HOURLY_TIERS: tuple[TierSpec, ...] = (BY_NAME["1m"],)
HOUR = dt.timedelta(hours=1)


def compress_after() -> dt.timedelta:
    return dt.timedelta(seconds=int(getattr(settings, "FIBERSTACK_COMPRESS_RAW_AFTER_SECONDS", 86_400)))


def compress_hours_after() -> dt.timedelta:
    return dt.timedelta(hours=float(getattr(settings, "FIBERSTACK_ROLLUP_COMPRESS_HOURS_AFTER", 1)))


@dataclass
class CompressReport:
    """What one run did: per compressed day its rows, series and chunks; days left for rollups to finish;
    per compressed rollup partition its buckets and series."""

    days: dict[dt.date, dict[str, int]] = field(default_factory=dict)
    waiting: list[dt.date] = field(default_factory=list)
    seconds: float = 0.0
    unit: str = "raw partitions"
    rollup_partitions: dict[str, dict[str, int]] = field(default_factory=dict)
    # "<partition> <hour>" -> rows, buckets and series of each closed hour compressed inside an open partition.
    rollup_hours: dict[str, dict[str, int]] = field(default_factory=dict)
    # Partitions, days or hours left for the next run: a reader held their table past ddl.READERS_WAIT.
    busy: list[str] = field(default_factory=list)

    def summary(self) -> str:
        rows = sum(d["rows"] for d in self.days.values())
        rate = f" ({rows / self.seconds:,.0f} values/s)" if self.seconds and rows else ""
        after = sum(d.get("bytes_after", 0) for d in self.days.values())
        size = f"; {after:,} bytes, {after / rows:.3f} B/value" if after and rows else ""
        wait = f"; waiting for rollups: {', '.join(map(str, self.waiting))}" if self.waiting else ""
        rolled = ""
        if self.rollup_partitions:
            buckets = sum(p.get("buckets", 0) for p in self.rollup_partitions.values())
            chunks = sum(p.get("chunks", 0) for p in self.rollup_partitions.values())
            rolled = (f"; compressed {len(self.rollup_partitions)} rollup partitions, {buckets} buckets" if buckets
                      else f"; compressed {chunks} rollup chunks")
        if self.rollup_hours:
            hour_rows = sum(h["rows"] for h in self.rollup_hours.values())
            rolled += f"; compressed {len(self.rollup_hours)} closed rollup hours, {hour_rows} rows"
        if self.busy:
            rolled += f"; tables busy, left for the next run: {', '.join(self.busy)}"
        return (f"compressed {len(self.days)} {self.unit}, {rows} values in {self.seconds:.1f} s{rate}{size}{wait}"
                f"{rolled}")


def rollups_final(lo: dt.datetime, hi: dt.datetime) -> bool:
    """Whether every tier holds [lo, hi) for good: what compression waits for."""
    states = {s.tier: s for s in RollupState.objects.filter(watermark__isnull=False)}
    for tier in TIERS:
        state = states.get(tier.name)
        if state is None or state.effective_watermark() < hi:
            return False
    if states[TIERS[0].name].watermark - lateness() < hi:
        return False
    return not RollupInvalidation.objects.filter(lo__lt=hi, hi__gt=lo).exists()


def due_days(now: dt.datetime, older_than: dt.timedelta) -> tuple[list[dt.date], list[dt.date]]:
    """(days to compress now, old enough days whose rollups are not final yet), oldest first."""
    with connection.cursor() as cursor:
        days = sorted(partitioned.existing_days(cursor))
    due, waiting = [], []
    for day in days:
        lo = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
        hi = lo + dt.timedelta(days=1)
        if hi > now - older_than:
            continue
        (due if rollups_final(lo, hi) else waiting).append(day)
    return due, waiting


@contextmanager
def _rollups_paused() -> Iterator[None]:
    """Hold the rollup job's lock for one partition, waiting for a running step to finish (the job
    itself only tries the lock, so it skips a turn rather than waiting for us)."""
    key = ADVISORY_LOCK_KEYS["metrics.rollup"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [key])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [key])


def compress_chunks_natively(now: dt.datetime, older_than: dt.timedelta | None, limit: int | None) -> CompressReport:
    """TimescaleDB: compress the raw chunks that ended ``older_than`` ago (at most ``limit``), then each
    rollup tier's closed chunks, in one transaction (a late re-roll later upserts into them)."""
    if older_than is None:
        older_than = dt.timedelta(days=int(getattr(settings, "FIBERSTACK_COMPRESS_AFTER_DAYS", 3)))
    report = CompressReport(unit="raw chunks")
    started = time.monotonic()
    with transaction.atomic(), connection.cursor() as cursor:
        report.days = timescale.compress_due(cursor, now - older_than, limit)
        for tier in TIERS:
            chunks = ddl.compress_chunks(cursor, tier.table, now - older_than)
            if chunks:
                report.rollup_partitions[tier.table] = {"chunks": chunks}
    report.seconds = time.monotonic() - started
    return report


def compress_raw(*, now: dt.datetime | None = None, older_than: dt.timedelta | None = None,
                 limit: int | None = None) -> CompressReport:
    """Compress every due raw partition or chunk (at most ``limit``): one transaction per partition on
    plain PostgreSQL, TimescaleDB's native compression on a hypertable."""
    now = now or timezone.now()
    if raw_storage.backend_name() == timescale.NAME:
        return compress_chunks_natively(now, older_than, limit)
    older_than = compress_after() if older_than is None else older_than
    report = CompressReport()
    # Late samples of a day without a partition (e.g. one compressed earlier) wait in DEFAULT; moving them
    # into their day's partition first makes them due with it (skipped if the beat job is doing it now).
    with advisory_lock("metrics.ensure_partitions") as acquired:
        if acquired:
            with transaction.atomic():
                raw_storage.ensure_partitions(today=now.date())
    due, report.waiting = due_days(now, older_than)
    started = time.monotonic()
    for day in due[:limit]:
        done = _unless_readers_hold(report, str(day), partial(compressed.compress_partition, day=day))
        if done is None:
            break
        report.days[day] = done
        logger.info("compressed raw partition %s: %s", day, done)
    compress_rollups(now=now, older_than=older_than, limit=limit, report=report)
    report.seconds = time.monotonic() - started
    return report


def due_rollup_partitions(now: dt.datetime, older_than: dt.timedelta) -> list[tuple[TierSpec, str, dt.datetime,
                                                                                       dt.datetime]]:
    """(tier, partition, lo, hi) of every rollup partition that ended ``older_than`` ago and whose rollups
    are final (the coarser tiers have merged it for good), oldest first per tier."""
    due = []
    with connection.cursor() as cursor:
        for tier in TIERS:
            for name, bounds in sorted(rollup_storage.existing_partitions(cursor, tier.table).items()):
                if bounds is None or bounds[1] > now - older_than:
                    continue
                due.append((tier, name, *bounds))
    return [d for d in due if rollups_final(d[2], d[3])]


def compress_rollups(*, now: dt.datetime | None = None, older_than: dt.timedelta | None = None,
                     limit: int | None = None, report: CompressReport | None = None) -> CompressReport:
    """Compress every due rollup partition (at most ``limit``; plain PostgreSQL), one transaction each,
    into ``metrics_rollup_<tier>_compressed`` (``rollups.compressed``)."""
    now = now or timezone.now()
    older_than = compress_after() if older_than is None else older_than
    report = report or CompressReport()
    if not rollup_storage.is_partitioned():
        return report
    for tier, name, lo, hi in due_rollup_partitions(now, older_than)[:limit]:
        done = _unless_readers_hold(report, name, partial(rollup_compressed.compress_partition, tier=tier, part=name,
                                                          lo=lo, hi=hi))
        if done is None:
            break
        report.rollup_partitions[name] = done
        logger.info("compressed rollup partition %s: %s", name, done)
    compress_rollup_hours(now=now, older_than=older_than, limit=limit, report=report)
    return report


def due_rollup_hours(now: dt.datetime, older_than: dt.timedelta,
                     after: dt.timedelta | None = None) -> list[tuple[TierSpec, str, dt.datetime, dt.datetime]]:
    """(tier, partition, lo, hi) of every hour holding rows in a partition of ``HOURLY_TIERS`` that the
    whole-partition compression does not take yet (it ended less than ``older_than`` ago, or is open), the
    hour ended ``after`` ago and its rollups are final; oldest first."""
    after = compress_hours_after() if after is None else after
    cutoff = floor_time(now - after, 3600)
    due = []
    with connection.cursor() as cursor:
        for tier in HOURLY_TIERS:
            for name, bounds in sorted(rollup_storage.existing_partitions(cursor, tier.table).items()):
                if bounds is None or bounds[1] <= now - older_than or bounds[0] >= cutoff:
                    continue
                # One scan of what is left as rows (the last hours, and hours a late re-roll wrote again).
                cursor.execute(f"SELECT DISTINCT date_bin(INTERVAL '1 hour', bucket, TIMESTAMPTZ 'epoch') "  # noqa: S608
                               f"FROM {name} WHERE bucket < %s ORDER BY 1", [cutoff])
                due.extend((tier, name, row[0], row[0] + HOUR) for row in cursor.fetchall())
    return [d for d in due if rollups_final(d[2], d[3])]


def _unless_readers_hold(report: CompressReport, key: str, work: Callable[[Any], T]) -> T | None:
    """``work(cursor)`` in a transaction of its own, with the rollup job paused; None, with ``key`` added to
    ``report.busy``, when readers held the table past ``ddl.READERS_WAIT`` (the transaction is rolled back and
    the next run takes the work: a pass never stalls the readers queued behind it for longer)."""
    try:
        with _rollups_paused(), transaction.atomic(), connection.cursor() as cursor:
            return work(cursor)
    except OperationalError as exc:
        if getattr(exc.__cause__, "sqlstate", None) != ddl.LOCK_NOT_AVAILABLE:
            raise
        logger.warning("%s not compressed, left for the next run: readers held its table (%s)", key, exc)
        report.busy.append(key)
        return None


def compress_rollup_hours(*, now: dt.datetime | None = None, older_than: dt.timedelta | None = None,
                          after: dt.timedelta | None = None, limit: int | None = None,
                          report: CompressReport | None = None) -> CompressReport:
    """Compress the due closed hours of open partitions (``due_rollup_hours``; plain PostgreSQL), one
    transaction each. An hour whose readers did not let go in time (``ddl.READERS_WAIT``) ends the pass: the
    next run takes it."""
    now = now or timezone.now()
    older_than = compress_after() if older_than is None else older_than
    report = report or CompressReport()
    if not rollup_storage.is_partitioned():
        return report
    for tier, name, lo, hi in due_rollup_hours(now, older_than, after)[:limit]:
        key = f"{name} {lo:%H:%M}"
        done = _unless_readers_hold(report, key, partial(rollup_compressed.compress_range, tier=tier, part=name,
                                                         lo=lo, hi=hi))
        if done is None:
            break
        if done["rows"]:
            report.rollup_hours[key] = done
            logger.info("compressed rollup hour %s: %s", key, done)
    return report
