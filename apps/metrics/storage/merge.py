"""The slow write path for samples whose (series_id, time) is already stored or repeated in the request:
a retried batch (the reply was lost after COMMIT), an agent re-sending its buffer, or a body that carries
the same point twice. Same series and timestamp is one sample, and the later write wins (InfluxDB's rule).

The rows arrive sorted by (series_id, time) with the request's order kept among equal keys
(``common.sort_rows``), so the repeats inside the request are settled here in one pass: the last of each
run of equal keys is kept (``ON CONFLICT DO UPDATE`` refuses to touch a row twice in one statement). The
rest goes into the raw table in one ``INSERT ... SELECT FROM unnest(arrays) ON CONFLICT (series_id, time)
DO UPDATE``, the three columns sent as three array parameters.

No staging table: the application's database role may not create tables, not even temporary ones
(docs/database-roles.md); an earlier version staged the rows in a temporary table, and every retry failed
with ``permission denied to create temporary tables`` under the hardened two-role setup. Times travel as
integer microseconds since the Unix epoch and are turned into ``timestamptz`` in SQL (exact: the product
of a bigint below 2^53 and one microsecond; ingest's time window keeps every timestamp far below that)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from apps.metrics.storage.common import TABLE

# WHERE ... IS DISTINCT FROM: an identical retry locks the stored rows but writes no new row versions (no
# index entries, no dead tuples to vacuum).
MERGE_SQL = f"""
INSERT INTO {TABLE} AS s (time, series_id, value)
SELECT timestamptz 'epoch' + r.t * interval '1 microsecond', r.sid, r.v
FROM unnest(%s::bigint[], %s::integer[], %s::double precision[]) AS r(t, sid, v)
ON CONFLICT (series_id, time) DO UPDATE SET value = EXCLUDED.value
WHERE s.value IS DISTINCT FROM EXCLUDED.value
"""  # noqa: S608 - names are ours


def last_of_each_key(
    times_us: Sequence[int], series_ids: Sequence[int], values: Sequence[float]
) -> tuple[list[int], list[int], list[float]]:
    """Rows sorted by (series_id, time), stably: one row per key, the last one (the later write)."""
    times: list[int] = []
    ids: list[int] = []
    kept: list[float] = []
    previous: tuple[int, int] | None = None
    for t, sid, value in zip(times_us, series_ids, values, strict=True):
        if (sid, t) == previous:
            kept[-1] = value
            continue
        previous = (sid, t)
        times.append(t)
        ids.append(sid)
        kept.append(value)
    return times, ids, kept


def merge_rows(cursor: Any, times_us: Sequence[int], series_ids: Sequence[int], values: Sequence[float]) -> None:
    """Upsert the rows (sorted by (series_id, time), the request's order kept among equal keys) in the
    caller's transaction: one row per key, the later write winning, over what is stored."""
    cursor.execute(MERGE_SQL, list(last_of_each_key(times_us, series_ids, values)))
