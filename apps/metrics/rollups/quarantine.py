"""Quarantine of series ranges a rollup step could not compute, so the job moves on without them.

A step is one statement over every series in its range; when it fails with an error that the *data*
causes (SQLSTATE classes 22 data exception, 23 constraint violation, 54 program limit), the job
retries it on halves of the series set inside savepoints (``isolate``) down to the single series that
still fail, records those here, and commits everything else. Errors of any other class (connection
lost, lock timeout, disk full) are not the data's fault: they propagate and the run fails as before,
so an outage never quarantines healthy series.

Overlapping or adjacent ranges of the same tier and series merge into one open row (the 1m job
re-rolls a sliding lateness window every minute, which would otherwise add a row per run). A later
step that covers a row's whole range and succeeds for its series resolves it. Written only by the
rollup job, under the ``metrics.rollup`` lock."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from django.db import DatabaseError, transaction
from django.db.models import Count, Min
from django.utils import timezone

from apps.metrics.rollups.models import RollupQuarantine

logger = logging.getLogger(__name__)

DATA_ERROR_CLASSES = ("22", "23", "54")


def is_data_error(exc: DatabaseError) -> bool:
    """Whether the database blamed the rows (see the module docstring for the classes)."""
    state = getattr(exc.__cause__, "sqlstate", None) or getattr(exc, "sqlstate", None) or ""
    return state[:2] in DATA_ERROR_CLASSES


@dataclass
class Isolated:
    """What ``isolate`` did: rows written by the subsets that succeeded, and the series that failed."""

    rows: int = 0
    failed: dict[int, str] = field(default_factory=dict)
    succeeded: list[int] = field(default_factory=list)


def isolate(run: Callable[[list[int]], int], series_ids: Sequence[int]) -> Isolated:
    """Run ``run(subset)`` on halves of ``series_ids`` recursively, each in a savepoint, until every
    series has either succeeded or failed alone. A subset that succeeds is kept (never run again), so
    one bad series among n costs about 2 log2(n) statements of shrinking size."""
    out = Isolated()
    pending: list[list[int]] = [list(series_ids)]
    while pending:
        subset = pending.pop()
        try:
            with transaction.atomic():
                out.rows += run(subset)
            out.succeeded.extend(subset)
        except DatabaseError as exc:
            if not is_data_error(exc):
                raise
            if len(subset) == 1:
                out.failed[subset[0]] = str(exc).strip()[:2000]
            else:
                middle = len(subset) // 2
                pending.extend([subset[middle:], subset[:middle]])
    return out


def record(tier: str, series_id: int, lo: dt.datetime, hi: dt.datetime, error: str,
           now: dt.datetime | None = None) -> RollupQuarantine:
    """Quarantine ``series_id``'s ``tier`` buckets in [lo, hi), merged into any open row it overlaps
    or touches."""
    now = now or timezone.now()
    touching = list(RollupQuarantine.objects.filter(
        tier=tier, series_id=series_id, resolved_at__isnull=True, bucket_from__lte=hi, bucket_to__gte=lo,
    ).order_by("bucket_from"))
    logger.warning("rollup %s: series %s quarantined for [%s, %s): %s", tier, series_id, lo, hi, error)
    if not touching:
        return RollupQuarantine.objects.create(tier=tier, series_id=series_id, bucket_from=lo, bucket_to=hi,
                                               error=error, first_seen_at=now, last_seen_at=now)
    row, *merged = touching
    row.bucket_from = min(lo, *(r.bucket_from for r in touching))
    row.bucket_to = max(hi, *(r.bucket_to for r in touching))
    row.first_seen_at = min(r.first_seen_at for r in touching)
    row.attempts = sum(r.attempts for r in touching) + 1
    row.last_seen_at = now
    row.error = error
    row.save()
    RollupQuarantine.objects.filter(pk__in=[r.pk for r in merged]).delete()
    return row


def resolve(tier: str, lo: dt.datetime, hi: dt.datetime, series_ids: Sequence[int] | None = None,
            now: dt.datetime | None = None) -> int:
    """Mark resolved the open rows of ``tier`` inside [lo, hi) (of ``series_ids`` only, when given):
    a step just recomputed those buckets successfully."""
    rows = RollupQuarantine.objects.filter(tier=tier, resolved_at__isnull=True, bucket_from__gte=lo,
                                           bucket_to__lte=hi)
    if series_ids is not None:
        rows = rows.filter(series_id__in=list(series_ids))
    return rows.update(resolved_at=now or timezone.now())


def open_summary() -> dict[str, object]:
    """``/readyz`` detail: open quarantined ranges per tier and when the oldest was first seen."""
    open_rows = RollupQuarantine.objects.filter(resolved_at__isnull=True).order_by()
    counts = dict(open_rows.values("tier").annotate(n=Count("id")).values_list("tier", "n"))
    oldest = open_rows.aggregate(oldest=Min("first_seen_at"))["oldest"]
    return {"open": counts, "oldest_first_seen": oldest.isoformat() if oldest else None}
