"""Names, DDL and the binary COPY format shared by both storage backends (the table has the same columns
and index in both, so writing and reading never differ above this package)."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from itertools import islice, repeat
from operator import itemgetter, le, sub
from typing import Any

TABLE = "metrics_sample"
INDEX = "metrics_sample_series_time"


def create_raw_table(cursor: Any, *, partition_clause: str = "") -> None:
    """The raw samples table, the same columns on every backend (only how it is split differs)."""
    cursor.execute(
        f"CREATE TABLE {TABLE} (time timestamptz NOT NULL, series_id integer NOT NULL, "
        f"value double precision NOT NULL) {partition_clause}"
    )


def create_raw_index(cursor: Any, *, unique: bool = True) -> None:
    """Every read is "these series over this time range"; on a partitioned table the index is created
    on each partition (and on every partition created or attached later). Unique because one series has
    one value per instant: a retried batch must not count twice (apps/metrics/storage/write.py). The
    non-unique form exists only for migrating back past 0004."""
    kind = "UNIQUE INDEX" if unique else "INDEX"
    cursor.execute(f"CREATE {kind} {INDEX} ON {TABLE} (series_id, time DESC)")


def drop_raw_index(cursor: Any) -> None:
    cursor.execute(f"DROP INDEX IF EXISTS {INDEX}")


def drop_raw_table(cursor: Any) -> None:
    cursor.execute(f"DROP TABLE IF EXISTS {TABLE} CASCADE")
COPY_SQL = f"COPY {TABLE} (time, series_id, value) FROM STDIN (FORMAT BINARY)"

# PostgreSQL's binary COPY: 11-byte signature, int32 flags, int32 header-extension length; each tuple is
# int16 field count then (int32 length, bytes) per field; int16 -1 ends the stream.
_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_TRAILER = struct.pack(">h", -1)
# 3 fields: timestamptz (int64 us since 2000-01-01), int4, float8: 34 bytes a row.
_ROW = struct.Struct(">hiqiiid")
_ROW_SIZE = _ROW.size
# Every row with zero time, id and value: the constant field count and lengths come from here.
_TEMPLATE = _ROW.pack(3, 8, 0, 4, 0, 8, 0.0)
_TIME_AT, _SID_AT, _VALUE_AT = 6, 18, 26
_PG_EPOCH_US = 946_684_800_000_000


def binary_copy_buffer(times_us: Sequence[int], series_ids: Sequence[int], values: Sequence[float]) -> bytes:
    """The whole COPY stream for the three columns, in the given row order, without a Python statement
    per row: each column is packed in one ``struct.pack`` call and its bytes are then laid into a buffer
    of template rows with extended-slice assignments (byte k of every row's field in one C loop). For a
    50,000-row request that is ~5 ms instead of ~15 ms for per-row packing (and psycopg's ``write_row``
    is slower still; see tests/metrics/test_storage.py)."""
    n = len(values)
    if not n:
        return _HEADER + _TRAILER
    buf = bytearray(_TEMPLATE * n)
    stride = _ROW_SIZE
    times = struct.pack(f">{n}q", *map(sub, times_us, repeat(_PG_EPOCH_US, n)))
    for k in range(8):
        buf[_TIME_AT + k::stride] = times[k::8]
    ids = struct.pack(f">{n}i", *series_ids)
    for k in range(4):
        buf[_SID_AT + k::stride] = ids[k::4]
    floats = struct.pack(f">{n}d", *values)
    for k in range(8):
        buf[_VALUE_AT + k::stride] = floats[k::8]
    return b"".join((_HEADER, buf, _TRAILER))


def sort_rows(
    times_us: Sequence[int], series_ids: Sequence[int], values: Sequence[float]
) -> tuple[Sequence[int], Sequence[int], Sequence[float]]:
    """The rows ordered by (series_id, time), as three sequences.

    Rows sorted by series make consecutive index insertions land on the same B-tree leaf: measured 2x
    faster COPY into the (series_id, time) index than the arrival order (usually all series of one
    timestamp, then the next). Requests nearly always arrive in time order, so one stable sort by series
    id is enough (checked in C first); otherwise a sort by time comes first. The order also makes the last
    row of each series its newest sample, which the hot tier wants. Both sorts are stable: rows with the
    same series and time keep the request's order, so "the later one in the body wins" survives sorting."""
    n = len(values)
    if n < 2:
        return times_us, series_ids, values
    if all(map(le, times_us, islice(times_us, 1, None))):
        order = sorted(range(n), key=series_ids.__getitem__)
    else:
        order = sorted(range(n), key=times_us.__getitem__)
        order.sort(key=series_ids.__getitem__)
    pick = itemgetter(*order)
    return pick(times_us), pick(series_ids), pick(values)


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
