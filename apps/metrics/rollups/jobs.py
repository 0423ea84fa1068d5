"""The incremental rollup jobs: 1m from raw, 5m from 1m, 1h from 5m, 1d from 1h.

State per tier (``RollupState``): a **watermark** and a **dirty range**.

* 1m: each run recomputes the closed minutes from ``watermark - FIBERSTACK_ROLLUP_LATENESS_SECONDS``
  up to the last closed minute, so samples that arrive up to the lateness window late are rolled
  into their bucket again; the watermark then moves to the end of the last closed minute. Samples
  arriving later than that are stored but not rolled up (documented limit; re-run by resetting the
  watermark if ever needed).
* 5m, 1h, 1d: each upsert reports the range of source buckets it inserted or changed (see
  ``sql.py``); that range becomes the next tier's dirty range, and the next tier recomputes the
  buckets that contain it -- including the current, still filling bucket, so a coarse tier is never
  more than one 1m run behind. A run that changed nothing leaves the coarser tiers idle.

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
from django.db import connection, transaction
from django.utils import timezone

from apps.metrics import retention
from apps.metrics.rollups import storage
from apps.metrics.rollups.models import RollupState
from apps.metrics.rollups.sql import rollup_sql
from apps.metrics.rollups.tiers import RAW_NAME, TIERS, TierSpec, downstream

logger = logging.getLogger(__name__)


@dataclass
class TierReport:
    """What one run did to one tier."""

    tier: str
    steps: int = 0
    rows: int = 0
    ranges: list[tuple[dt.datetime, dt.datetime]] = field(default_factory=list)
    caught_up: bool = True

    def summary(self) -> str:
        if not self.steps:
            return f"{self.tier}: idle"
        span = f"{self.ranges[0][0]:%Y-%m-%d %H:%M}..{self.ranges[-1][1]:%Y-%m-%d %H:%M}"
        tail = "" if self.caught_up else " (behind; continues next run)"
        return f"{self.tier}: {self.rows} rows in {self.steps} steps over {span}{tail}"


def lateness() -> dt.timedelta:
    return dt.timedelta(seconds=int(getattr(settings, "FIBERSTACK_ROLLUP_LATENESS_SECONDS", 600)))


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


def _step(tier: TierSpec, lo: dt.datetime, hi: dt.datetime) -> int:
    """Recompute ``tier``'s buckets over source [lo, hi) in the caller's transaction; returns the rows
    inserted or changed and marks them dirty for the next tier."""
    storage.ensure_range(tier, lo, hi)
    with connection.cursor() as cursor:
        work_mem = getattr(settings, "FIBERSTACK_ROLLUP_WORK_MEM", "64MB")
        cursor.execute("SELECT set_config('work_mem', %s, true)", [work_mem])
        cursor.execute(rollup_sql(tier.name), {"lo": lo, "hi": hi})
        changed, first, last = cursor.fetchone()
    if changed:
        _mark_dirty(tier, first, last + tier.width)
    return int(changed)


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
            report.rows += _step(tier, lo, hi)
            state.watermark = max(state.watermark, hi)
            state.save(update_fields=["watermark"])
        report.steps += 1
        report.ranges.append((lo, hi))
        lo = hi
        if lo < target and time.monotonic() > deadline:
            report.caught_up = False
            break


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
            report.rows += _step(tier, lo, hi)
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
    """``/readyz`` details: rollup lag per tier in seconds (READINESS_DETAIL_PROVIDERS entry)."""
    return {"rollup_lag_seconds": lag_seconds()}
