"""``copy_samples``: the one way samples are written. Same series and timestamp is one sample and the later
write wins, whether the repeat is in the same request or arrives later (a retry whose first reply was lost
after COMMIT, an agent re-sending its buffer), so every reader (raw API, rollups, latest values) counts a
point once.

The unique index on (series_id, time) enforces it. Nearly every request carries only new points, so the
rows first go in with one plain binary COPY inside a savepoint, which costs what COPY cost before the index
was unique; only when the index refuses a row does the request take the upsert path of ``merge.py``
(measured in bench/README.md, "Retried batches count once")."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import transaction
from psycopg.errors import UniqueViolation

from apps.metrics.storage.common import COPY_SQL, binary_copy_buffer, newest_per_series, sort_rows, sorted_columns
from apps.metrics.storage.merge import merge_rows


def copy_samples(
    cursor: Any,
    times_us: Sequence[int],
    series_ids: Sequence[int],
    values: Sequence[float],
    *,
    latest: dict[int, tuple[int, float]] | None = None,
) -> int:
    """Write the samples through ``cursor`` (a Django cursor on the psycopg 3 connection) inside the
    caller's transaction (or one of its own); returns how many values the request carried. A value that a
    later one with the same series and time replaced (later in this request, or in a later request) still
    counts: it was accepted, then overwritten, so a client comparing the doors' ``accepted`` with what it
    sent sees no loss. When ``latest`` is given it is filled with the newest ``(time_us, value)`` of each
    series id (the later one of equal times), from the sorted rows at C speed."""
    if not len(values):
        return 0
    rows = sorted_columns(times_us, series_ids, values)
    data = binary_copy_buffer(*rows)
    alias = cursor.db.alias
    with transaction.atomic(using=alias, savepoint=False):
        try:
            with transaction.atomic(using=alias), cursor.copy(COPY_SQL) as copy:
                copy.write(data)
        except UniqueViolation:
            # The savepoint is rolled back: none of the COPY's rows stay; all of them go in as upserts,
            # sorted by (series, time) with the request's order kept among equal keys (merge_rows' input).
            merge_rows(cursor, *sort_rows(times_us, series_ids, values))
    if latest is not None:
        latest.update(newest_per_series(rows))
    return len(rows.values)
