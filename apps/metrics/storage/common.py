"""Names, DDL and the binary COPY format shared by both storage backends (the table has the same columns
and index in both, so writing and reading never differ above this package)."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

TABLE = "metrics_sample"
INDEX = "metrics_sample_series_time"


def create_raw_table(cursor: Any, *, partition_clause: str = "") -> None:
    """The raw samples table, the same columns on every backend (only how it is split differs)."""
    cursor.execute(
        f"CREATE TABLE {TABLE} (time timestamptz NOT NULL, series_id integer NOT NULL, "
        f"value double precision NOT NULL) {partition_clause}"
    )


def create_raw_index(cursor: Any, *, unique: bool = True, descending: bool = False) -> None:
    """Every read is "these series over this time range"; on a partitioned table the index is created
    on each partition (and on every partition created or attached later). Unique because one series has
    one value per instant: a retried batch must not count twice (apps/metrics/storage/write.py). The
    non-unique form exists only for migrating back past 0004.

    Ascending in time (migration 0009; ``descending`` only for migrating back): a request's rows, sorted
    by (series, time), then each land just after the one before them, where B-tree splits leave full
    pages behind -- 32 bytes of index per row against 48 for ``time DESC``, whose newest-first order put
    every new row before the previous one -- and a little less PostgreSQL CPU per row (best of three runs:
    1.44 against 1.60 µs; bench/README.md, "Faster doors"). Newest-first reads scan it backwards."""
    kind = "UNIQUE INDEX" if unique else "INDEX"
    order = " DESC" if descending else ""
    cursor.execute(f"CREATE {kind} {INDEX} ON {TABLE} (series_id, time{order})")


def drop_raw_index(cursor: Any) -> None:
    cursor.execute(f"DROP INDEX IF EXISTS {INDEX}")


def drop_raw_table(cursor: Any) -> None:
    cursor.execute(f"DROP TABLE IF EXISTS {TABLE} CASCADE")
COPY_SQL = f"COPY {TABLE} (time, series_id, value) FROM STDIN (FORMAT BINARY)"

# PostgreSQL's binary COPY: 11-byte signature, int32 flags, int32 header-extension length; each tuple is
# int16 field count then (int32 length, bytes) per field; int16 -1 ends the stream.
_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_TRAILER = struct.pack(">h", -1)
# 3 fields: timestamptz (int64 us since 2000-01-01), int4, float8: 34 bytes a row, as one packed
# big-endian numpy record, so a whole request's rows are laid out by a few array assignments.
_ROW = np.dtype([("fields", ">i2"), ("time_len", ">i4"), ("time", ">i8"), ("sid_len", ">i4"), ("sid", ">i4"),
                 ("value_len", ">i4"), ("value", ">f8")])
_PG_EPOCH_US = 946_684_800_000_000


class Columns(NamedTuple):
    """The rows of one write as three numpy arrays (int64 unix microseconds, int32 ids, float64 values)."""

    times_us: np.ndarray
    series_ids: np.ndarray
    values: np.ndarray

    def lists(self) -> tuple[list[int], list[int], list[float]]:
        """Plain Python columns, for the paths that hand them to psycopg as parameters."""
        return self.times_us.tolist(), self.series_ids.tolist(), self.values.tolist()


def columns(times_us: Sequence[int], series_ids: Sequence[int], values: Sequence[float]) -> Columns:
    """The three columns as arrays: one C conversion each (~15 ns a value) instead of Python steps per row."""
    return Columns(np.asarray(times_us, dtype=np.int64), np.asarray(series_ids, dtype=np.int32),
                   np.asarray(values, dtype=np.float64))


def binary_copy_buffer(times_us: Sequence[int], series_ids: Sequence[int], values: Sequence[float]) -> bytes:
    """The whole COPY stream for the three columns, in the given row order, without a Python statement
    per row: one record array of the row layout, filled a column at a time (numpy converts to big-endian
    on assignment). For a 50,000-row request ~1 ms, against ~6 ms for the earlier struct.pack plus
    extended-slice version and ~15 ms for per-row packing (psycopg's ``write_row`` is slower still; see
    tests/metrics/test_storage.py)."""
    cols = columns(times_us, series_ids, values)
    rows = np.empty(len(cols.values), _ROW)
    rows["fields"] = 3
    rows["time_len"] = 8
    rows["sid_len"] = 4
    rows["value_len"] = 8
    rows["time"] = cols.times_us - _PG_EPOCH_US
    rows["sid"] = cols.series_ids
    rows["value"] = cols.values
    return b"".join((_HEADER, rows.tobytes(), _TRAILER))


def sorted_columns(times_us: Sequence[int], series_ids: Sequence[int], values: Sequence[float]) -> Columns:
    """The rows ordered by (series_id, time), as arrays.

    Rows sorted by series make consecutive index insertions land on the same B-tree leaf: measured 2x
    faster COPY into the (series_id, time) index than the arrival order (usually all series of one
    timestamp, then the next). Requests nearly always arrive in time order, so one stable sort by series
    id is enough (checked first); otherwise a sort by (series, time). The order also makes the last
    row of each series its newest sample, which the hot tier wants. Both sorts are stable: rows with the
    same series and time keep the request's order, so "the later one in the body wins" survives sorting."""
    cols = columns(times_us, series_ids, values)
    times, ids = cols.times_us, cols.series_ids
    if len(times) < 2:
        return cols
    in_time_order = bool((times[1:] >= times[:-1]).all())
    # lexsort: the last key is the primary one; both sorts are stable.
    order = stable_order(ids) if in_time_order else np.lexsort((times, ids))
    return Columns(times[order], ids[order], cols.values[order])


def stable_order(ids: np.ndarray) -> np.ndarray:
    """``np.argsort(ids, kind="stable")``, faster when the ids span fewer than 65,536 values (a request's
    series nearly always do): numpy sorts 16-bit keys with a radix sort, linear whatever the order, where
    32-bit keys take timsort -- 0.7 against 2.6 ms for a TSBS request's 50,000 rows when its series ids do
    not follow the body's order."""
    lo = int(ids.min()) if len(ids) else 0
    if len(ids) and int(ids.max()) - lo < 65_536:
        return np.argsort((ids - lo).astype(np.uint16), kind="stable")
    return np.argsort(ids, kind="stable")


def sort_rows(
    times_us: Sequence[int], series_ids: Sequence[int], values: Sequence[float]
) -> tuple[list[int], list[int], list[float]]:
    """``sorted_columns`` as Python lists (the upsert path's parameters)."""
    return sorted_columns(times_us, series_ids, values).lists()


def newest_per_series(rows: Columns) -> dict[int, tuple[int, float]]:
    """Of rows in ``sorted_columns`` order: each series id's newest sample ``(time_us, value)``, and of
    two with the same time the later one in the request -- the last row of each series."""
    ids = rows.series_ids
    if not len(ids):
        return {}
    last = np.flatnonzero(np.append(ids[1:] != ids[:-1], True))
    return dict(zip(ids[last].tolist(), zip(rows.times_us[last].tolist(), rows.values[last].tolist(), strict=True),
                    strict=True))


def copy_samples_write_row(
    cursor: Any, times_us: Sequence[int], series_ids: Sequence[int], values: Sequence[float]
) -> int:
    """The same COPY through psycopg's ``write_row``; kept only so the benchmark test can compare."""
    import datetime as dt

    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    with cursor.copy(COPY_SQL) as copy:
        copy.set_types(["timestamptz", "int4", "float8"])
        for t, sid, v in zip(times_us, series_ids, values, strict=True):
            copy.write_row((epoch + dt.timedelta(microseconds=t), sid, v))
    return len(values)
