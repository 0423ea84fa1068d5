"""The incremental rollup jobs: 1m from raw, 5m from 1m, 1h from 5m, 1d from 1h.

State per tier (``RollupState``): a **watermark** and a **dirty range**.

* 1m: each run recomputes the closed minutes from ``watermark - FIBERSTACK_ROLLUP_LATENESS_SECONDS``
  up to the last closed minute, so samples that arrive up to the lateness window late are rolled
  into their bucket again; the watermark then moves to the end of the last closed minute. Anything
  older that ingest accepts (up to its max-past window: backlogs, replays, backfill) is logged by
  ingest in the **invalidation log** (``invalidation``); each run then re-rolls the logged minutes
  below the watermark, a step span at a time, at least one step per run and more while the budget
  lasts, deleting the log rows in the step's transaction.
* 5m, 1h, 1d: each upsert reports the range of source buckets it inserted or changed (see
  ``sql.py``); that range becomes the next tier's dirty range, and the next tier recomputes the
  buckets that contain it -- including the current, still filling bucket, so a coarse tier is never
  more than one 1m run behind. A run that changed nothing leaves the coarser tiers idle.

Robust against data: sums saturate instead of overflowing (``sums``) and counts are bigint; a step
that still fails because of its data is retried per series in savepoints, and the series that fail
alone are quarantined for that range (``quarantine``, admin, ``/readyz``) while the rest commits and
the watermark moves on -- one organization's data never stops the tiers for everyone.

Idempotent: every step recomputes whole buckets from their complete source range and upserts; running
twice writes the same rows (and the second run reports zero changed rows). Bounded: one step reads at
most ``TierSpec.step_span`` of source time and a run stops starting new steps after
``FIBERSTACK_ROLLUP_TIME_BUDGET_SECONDS``, so a backlog is worked off over several runs. Each step is
one transaction (rows, watermark and the next tier's dirt together), so a crash loses nothing.
Callers hold the ``metrics.rollup`` advisory lock (``apps.metrics.rollup_tasks``)."""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from apps.metrics import retention
from apps.metrics.rollups import compressed, invalidation, quarantine, storage
from apps.metrics.rollups.invalidation import lateness
from apps.metrics.rollups.models import RollupState
from apps.metrics.rollups.sql import rollup_sql
from apps.metrics.rollups.tiers import BY_NAME, RAW_NAME, TIERS, TierSpec, downstream
from apps.metrics.storage.compressed import RAW_SOURCE, read_params

logger = logging.getLogger(__name__)


@dataclass
class TierReport:
    """What one run did to one tier."""

    tier: str
    steps: int = 0
    rows: int = 0
    ranges: list[tuple[dt.datetime, dt.datetime]] = field(default_factory=list)
    caught_up: bool = True

    late_steps: int = 0
    quarantined: int = 0

    def summary(self) -> str:
        if not self.steps:
            return f"{self.tier}: idle"
        span = f"{min(r[0] for r in self.ranges):%Y-%m-%d %H:%M}..{max(r[1] for r in self.ranges):%Y-%m-%d %H:%M}"
        late = f", {self.late_steps} for late data" if self.late_steps else ""
        bad = f", {self.quarantined} series quarantined" if self.quarantined else ""
        tail = "" if self.caught_up else " (behind; continues next run)"
        return f"{self.tier}: {self.rows} rows in {self.steps} steps{late} over {span}{bad}{tail}"


def time_budget() -> float:
    return float(getattr(settings, "FIBERSTACK_ROLLUP_TIME_BUDGET_SECONDS", 45))


def _state(tier: str) -> RollupState:
    state, _ = RollupState.objects.get_or_create(tier=tier)
    return state


def _mark_dirty(tier: TierSpec, lo: dt.datetime, hi: dt.datetime) -> None:
    """Add [lo, hi) of ``tier``'s buckets to the dirty range of the tier rolled from it."""
    nxt = downstream(tier.name)
    if nxt is None:
        return
    state = RollupState.objects.select_for_update().get_or_create(tier=nxt.name)[0]
    state.dirty_from = lo if state.dirty_from is None else min(state.dirty_from, lo)
    state.dirty_to = hi if state.dirty_to is None else max(state.dirty_to, hi)
    state.save(update_fields=["dirty_from", "dirty_to"])


def _execute(tier: TierSpec, lo: dt.datetime, hi: dt.datetime, series: list[int] | None) -> int:
    """Run the step statement (for ``series`` only, when given); returns the rows inserted or changed
    and marks them dirty for the next tier."""
    with connection.cursor() as cursor:
        params = {"lo": lo, "hi": hi, "series": series}
        params.update(_source_params(cursor, tier, lo, hi, series))
        cursor.execute(rollup_sql(tier.name, series is not None), params)
        changed, first, last = cursor.fetchone()
    if changed:
        _mark_dirty(tier, first, last + tier.width)
    return int(changed)


def _source_params(cursor: object, tier: TierSpec, lo: dt.datetime, hi: dt.datetime,
                   series: list[int] | None) -> dict[str, object]:
    """The compressed part of ``tier``'s source over [lo, hi): raw chunks, or the source tier's chunks."""
    if tier.source == RAW_NAME:
        return read_params(cursor, lo, hi, series)
    return compressed.read_params(cursor, BY_NAME[tier.source], lo, hi, series)


def _series_in(tier: TierSpec, lo: dt.datetime, hi: dt.datetime) -> list[int]:
    """The series with source rows in [lo, hi): what a failed step is retried over."""
    with connection.cursor() as cursor:
        params = {"lo": lo, "hi": hi}
        if tier.source == RAW_NAME:
            sql = f"SELECT DISTINCT series_id FROM {RAW_SOURCE} AS raw WHERE time >= %(lo)s AND time < %(hi)s"  # noqa: S608
            params.update(read_params(cursor, lo, hi))
        else:
            sql = (f"SELECT DISTINCT series_id FROM {compressed.source_sql(BY_NAME[tier.source])} AS src "  # noqa: S608
                   "WHERE bucket >= %(lo)s AND bucket < %(hi)s")
            params.update(_source_params(cursor, tier, lo, hi, None))
        cursor.execute(sql + " ORDER BY 1", params)
        return [row[0] for row in cursor.fetchall()]


def _data_range(tier: TierSpec, series_id: int, lo: dt.datetime,
                hi: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """The buckets of [lo, hi) that ``series_id`` has source rows in: what is quarantined (tight, so a
    later re-roll of just those buckets can resolve it)."""
    with connection.cursor() as cursor:
        params = {"sid": series_id, "lo": lo, "hi": hi}
        if tier.source == RAW_NAME:
            sql = (f"SELECT min(time), max(time) FROM {RAW_SOURCE} AS raw "  # noqa: S608
                   "WHERE series_id = %(sid)s AND time >= %(lo)s AND time < %(hi)s")
            params.update(read_params(cursor, lo, hi, [series_id]))
        else:
            sql = (f"SELECT min(bucket), max(bucket) FROM {compressed.source_sql(BY_NAME[tier.source])} AS src "  # noqa: S608
                   "WHERE series_id = %(sid)s AND bucket >= %(lo)s AND bucket < %(hi)s")
            params.update(_source_params(cursor, tier, lo, hi, [series_id]))
        cursor.execute(sql, params)
        first, last = cursor.fetchone()
    if first is None:
        return lo, hi
    return tier.floor(first), tier.floor(last) + tier.width


def _step(tier: TierSpec, lo: dt.datetime, hi: dt.datetime, report: TierReport) -> int:
    """Recompute ``tier``'s buckets over source [lo, hi) in the caller's transaction; returns the rows
    inserted or changed. When the data makes the statement fail, the series that fail alone are
    quarantined for [lo, hi) and the others' rows are kept (``quarantine``)."""
    storage.ensure_range(tier, lo, hi)
    with connection.cursor() as cursor:
        work_mem = getattr(settings, "FIBERSTACK_ROLLUP_WORK_MEM", "64MB")
        cursor.execute("SELECT set_config('work_mem', %s, true)", [work_mem])
    try:
        with transaction.atomic():
            changed = _execute(tier, lo, hi, None)
    except DatabaseError as exc:
        if not quarantine.is_data_error(exc):
            raise
        return _quarantine_failing(tier, lo, hi, exc, report)
    quarantine.resolve(tier.name, lo, hi)
    return changed


def _quarantine_failing(tier: TierSpec, lo: dt.datetime, hi: dt.datetime, exc: DatabaseError,
                        report: TierReport) -> int:
    """Retry the failed step per series (``quarantine.isolate``), quarantine those that fail alone and
    keep the rest. When no series succeeds alone (several series, or none to blame), the error is not one
    series' data -- e.g. a missing partition -- and it is raised instead of quarantining everything."""
    logger.warning("rollup %s [%s, %s) failed (%s); retrying per series", tier.name, lo, hi, exc)
    series_ids = _series_in(tier, lo, hi)
    result = quarantine.isolate(lambda ids: _execute(tier, lo, hi, ids), series_ids)
    if not result.succeeded and len(series_ids) != 1:
        raise exc
    for series_id, error in result.failed.items():
        quarantine.record(tier.name, series_id, *_data_range(tier, series_id, lo, hi), error)
    quarantine.resolve(tier.name, lo, hi, result.succeeded)
    report.quarantined += len(result.failed)
    return result.rows


def _initial_watermark(tier: TierSpec, now: dt.datetime) -> dt.datetime:
    """A fresh installation starts rolling from the oldest raw data any organization may keep."""
    return tier.floor(now - dt.timedelta(days=retention.longest_days(RAW_NAME)))


def _roll_from_raw(tier: TierSpec, state: RollupState, now: dt.datetime, deadline: float,
                   report: TierReport) -> None:
    if state.watermark is None:
        state.watermark = _initial_watermark(tier, now)
    target = tier.floor(now)
    lo = tier.floor(min(state.watermark, target) - lateness())
    while lo < target:
        hi = min(target, max(lo, state.watermark) + tier.step_span)
        with transaction.atomic():
            report.rows += _step(tier, lo, hi, report)
            state.watermark = max(state.watermark, hi)
            state.save(update_fields=["watermark"])
        report.steps += 1
        report.ranges.append((lo, hi))
        lo = hi
        if lo < target and time.monotonic() > deadline:
            report.caught_up = False
            break


def _roll_invalidated(tier: TierSpec, state: RollupState, deadline: float, report: TierReport) -> None:
    """Re-roll the minutes the invalidation log holds below the watermark: at least one step per run
    (so a backfill always advances), more while the budget lasts."""
    assert state.watermark is not None
    while True:
        with transaction.atomic():
            claimed = invalidation.claim(tier, state.watermark)
            if claimed is None:
                return
            report.rows += _step(tier, claimed.lo, claimed.hi, report)
            claimed.settle()
        report.steps += 1
        report.late_steps += 1
        report.ranges.append((claimed.lo, claimed.hi))
        if time.monotonic() > deadline:
            report.caught_up = report.caught_up and not invalidation.pending_below(state.watermark)
            return


def _roll_from_tier(tier: TierSpec, state: RollupState, source: RollupState, deadline: float,
                    report: TierReport) -> None:
    while True:
        state.refresh_from_db(fields=["dirty_from", "dirty_to"])
        if state.dirty_from is None or state.dirty_to is None:
            break
        lo = tier.floor(state.dirty_from)
        end = tier.ceil(state.dirty_to)
        hi = min(end, lo + max(tier.step_span, tier.width))
        with transaction.atomic():
            report.rows += _step(tier, lo, hi, report)
            # Runs are serialised by the lock and the finer tier ran before this one, so nothing else
            # adds dirt to this tier meanwhile: what is left is [hi, end).
            if hi < end:
                state.dirty_from = hi
            else:
                state.dirty_from = state.dirty_to = None
            # The tier now holds every source row before min(hi, source watermark), and rows it held
            # before; so it holds nothing at or after the new watermark (queries stitch raw from there).
            if source.watermark is not None:
                reached = min(hi, source.watermark)
                state.watermark = reached if state.watermark is None else max(state.watermark, reached)
            state.save(update_fields=["dirty_from", "dirty_to", "watermark"])
        report.steps += 1
        report.ranges.append((lo, hi))
        if state.dirty_from is not None and time.monotonic() > deadline:
            report.caught_up = False
            break
    if state.dirty_from is None and source.watermark is not None:
        # Nothing pending: every source row is merged, so the tier is as complete as its source.
        state.watermark = source.watermark if state.watermark is None else max(state.watermark, source.watermark)
        state.save(update_fields=["watermark"])


def run_rollups(now: dt.datetime | None = None, budget_seconds: float | None = None) -> list[TierReport]:
    """One pass over all tiers, finest first (so a coarse tier sees this run's finer rows). The caller
    holds the ``metrics.rollup`` advisory lock."""
    now = now or timezone.now()
    deadline = time.monotonic() + (time_budget() if budget_seconds is None else budget_seconds)
    reports: list[TierReport] = []
    states: dict[str, RollupState] = {}
    for tier in TIERS:
        started = time.monotonic()
        state = _state(tier.name)
        report = TierReport(tier.name)
        if tier.source == RAW_NAME:
            _roll_from_raw(tier, state, now, deadline, report)
            _roll_invalidated(tier, state, deadline, report)
        else:
            _roll_from_tier(tier, state, states[tier.source], deadline, report)
        state.last_run_at = timezone.now()
        state.last_duration_ms = int((time.monotonic() - started) * 1000)
        state.rows_written = report.rows
        state.last_summary = report.summary()[:300]
        state.save(update_fields=["last_run_at", "last_duration_ms", "rows_written", "last_summary"])
        states[tier.name] = state
        reports.append(report)
        logger.info("rollup %s (%d ms)", report.summary(), state.last_duration_ms)
    return reports


def lag_seconds(now: dt.datetime | None = None) -> dict[str, float | None]:
    """Seconds between now and each tier's effective watermark (None before its first run)."""
    now = now or timezone.now()
    found = {s.tier: s for s in RollupState.objects.all()}
    out: dict[str, float | None] = {}
    for tier in TIERS:
        state = found.get(tier.name)
        lag = state.lag(now) if state is not None else None
        out[tier.name] = None if lag is None else round(lag.total_seconds(), 1)
    return out


def readiness_details() -> dict[str, object]:
    """``/readyz`` details (a FIBERSTACK_READINESS_PROVIDERS entry): rollup lag per tier in seconds, the
    quarantined series ranges still open, and the late-data ranges waiting to be re-rolled."""
    return {"rollup_lag_seconds": lag_seconds(), "rollup_quarantine": quarantine.open_summary(),
            "rollup_invalidations": invalidation.pending()}
