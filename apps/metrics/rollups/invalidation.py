"""The invalidation log: raw time ranges that received samples the 1m job may already have rolled past
(an agent's backlog after an outage, a Prometheus WAL replay, an ``influx -import`` of last week), so
late data and backfill reach every tier -- the way TimescaleDB's continuous aggregates keep a
hypertable invalidation log.

**Writing** (``record_late``, called by ``apps.metrics.services.ingest`` right after the COPY, in the
same transaction: the log row commits if and only if the samples do). A sample needs logging only if
the 1m job's lateness re-roll (``[watermark - FIBERSTACK_ROLLUP_LATENESS_SECONDS, ...)`` every run)
might not cover it. The 1m watermark never passes the wall clock, so any sample newer than
``now - lateness`` at commit time is re-rolled anyway; ingest logs the samples older than
``now - lateness / 2`` (half the window is the margin for the commit delay and clock skew between web
and worker hosts). It deliberately does not read the watermark: a run in progress may be about to
move it past a sample without having seen it (its step read raw before this transaction committed),
and neither the committed watermark nor a cached one can tell -- only the wall clock bounds it. So an
on-time batch pays one ``min()`` over its timestamps and one comparison; no query, no cache.

**Consuming** (``claim``, by the 1m job under the ``metrics.rollup`` lock): the oldest logged ranges,
merged while they overlap or lie within ``MERGE_GAP`` of each other, at most one step span at a time and
only below ``watermark - lateness``: rows starting at or after it are simply dropped, because the next
run's lateness re-roll (or normal progress) covers them -- so agents that merely flush a few minutes
late cost the job nothing extra. The job re-rolls the claimed range for all series, which marks the
coarser tiers dirty as any step does; ``Claim.settle`` then deletes the rows it covered or shrinks the
ones reaching past it, in the step's transaction. Only rows read by the claim are touched, so a range
logged by a concurrent ingest meanwhile stays for the next step: nothing is lost, at worst a range is
re-rolled twice.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.conf import settings
from django.db import connection

from apps.metrics.rollups.tiers import TierSpec

TABLE = "metrics_rollupinvalidation"
MINUTE_US = 60_000_000
# Late minutes closer than this are logged (and re-rolled) as one range: fewer rows for sparse series,
# at the price of re-rolling the gap.
MERGE_GAP = dt.timedelta(minutes=15)
MERGE_GAP_US = int(MERGE_GAP.total_seconds()) * 1_000_000
CLAIM_ROWS = 10_000
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def lateness() -> dt.timedelta:
    """How far behind its watermark the 1m job re-rolls every run (FIBERSTACK_ROLLUP_LATENESS_SECONDS)."""
    return dt.timedelta(seconds=int(getattr(settings, "FIBERSTACK_ROLLUP_LATENESS_SECONDS", 600)))


def late_before_us(now_us: int) -> int:
    """Samples before this instant (µs since the epoch) are logged: older than half the lateness."""
    return now_us - int(lateness().total_seconds() * 1_000_000) // 2


def record_late(cursor: Any, times_us: Sequence[int] | np.ndarray, now_us: int | None = None) -> int:
    """Log the minutes of ``times_us`` the lateness re-roll may miss; returns the ranges written. Takes the
    parser's list of Python ints or an int64 array (the COPY's column: then every pass below is numpy's)."""
    if len(times_us) == 0:
        return 0
    cutoff = late_before_us(time.time_ns() // 1000 if now_us is None else now_us)
    # On a list, min() and max() (~0.7 ms each for a request's 50,000 ints) beat converting it (~1.2 ms).
    first = int(times_us.min()) if isinstance(times_us, np.ndarray) else min(times_us)
    if first >= cutoff:
        return 0
    last = int(times_us.max()) if isinstance(times_us, np.ndarray) else max(times_us)
    if last < cutoff and last - first <= MERGE_GAP_US:
        # All late and closer together than MERGE_GAP: what the minute set below would give (a backfill
        # batch is usually one such span).
        minutes = [first // MINUTE_US, last // MINUTE_US]
    else:
        # Late and on-time samples mixed, or late ones far apart: numpy's unique (floor division, like
        # Python's //) instead of a set of 50,000 Python quotients (~2.8 ms).
        times = np.asarray(times_us, dtype=np.int64)
        minutes = np.unique(times[times < cutoff] // MINUTE_US).tolist()
    ranges = _minute_ranges(minutes)
    cursor.execute(
        f"INSERT INTO {TABLE} (lo, hi) SELECT * FROM unnest(%s::timestamptz[], %s::timestamptz[])",  # noqa: S608
        [[lo for lo, _ in ranges], [hi for _, hi in ranges]],
    )
    return len(ranges)


def _minute_ranges(minutes: list[int]) -> list[tuple[dt.datetime, dt.datetime]]:
    """Sorted minute numbers -> [start, end) datetimes, joining runs less than MERGE_GAP apart."""
    gap = int(MERGE_GAP.total_seconds() // 60)
    runs: list[list[int]] = []
    for minute in minutes:
        if runs and minute - runs[-1][1] <= gap:
            runs[-1][1] = minute + 1
        else:
            runs.append([minute, minute + 1])
    return [(_EPOCH + dt.timedelta(minutes=a), _EPOCH + dt.timedelta(minutes=b)) for a, b in runs]


@dataclass
class Claim:
    """One step's worth of the log: re-roll [lo, hi), then ``settle``."""

    lo: dt.datetime
    hi: dt.datetime
    ids: list[int]

    def settle(self) -> None:
        """Delete the claimed rows the step covered, shrink those reaching past it (same transaction)."""
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {TABLE} WHERE id = ANY(%s) AND hi <= %s",  # noqa: S608
                           [self.ids, self.hi])
            cursor.execute(f"UPDATE {TABLE} SET lo = %s WHERE id = ANY(%s) AND lo < %s",  # noqa: S608
                           [self.hi, self.ids, self.hi])


def claim(tier: TierSpec, watermark: dt.datetime) -> Claim | None:
    """The next range to re-roll (see the module docstring), or None when nothing the next run's
    lateness re-roll would not cover is logged. Call inside the step's transaction."""
    with connection.cursor() as cursor:
        # The next run re-rolls from watermark - lateness onwards anyway: those rows are done.
        cursor.execute(f"DELETE FROM {TABLE} WHERE lo >= %s", [_horizon(watermark)])  # noqa: S608
        cursor.execute(f"SELECT id, lo, hi FROM {TABLE} ORDER BY lo, id LIMIT %s", [CLAIM_ROWS])  # noqa: S608
        rows = cursor.fetchall()
    if not rows:
        return None
    lo = tier.floor(rows[0][1])
    limit = min(lo + tier.step_span, watermark)
    end = rows[0][2]
    ids = []
    for row_id, row_lo, row_hi in rows:
        if row_lo >= limit or row_lo > end + MERGE_GAP:
            break
        ids.append(row_id)
        end = max(end, row_hi)
    return Claim(lo=lo, hi=min(tier.ceil(end), limit), ids=ids)


def _horizon(watermark: dt.datetime) -> dt.datetime:
    """Log rows starting at or after this need no re-roll of their own (the next lateness re-roll)."""
    return watermark - lateness()


def pending_below(watermark: dt.datetime) -> bool:
    """Whether logged ranges still wait for a re-roll of their own."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {TABLE} WHERE lo < %s)", [_horizon(watermark)])  # noqa: S608
        return bool(cursor.fetchone()[0])


def pending() -> dict[str, object]:
    """``/readyz`` detail: logged ranges not yet re-rolled, and the oldest instant they reach."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*), min(lo) FROM {TABLE}")  # noqa: S608
        count, oldest = cursor.fetchone()
    return {"ranges": count, "oldest": oldest.isoformat() if oldest else None}
