"""Compressed raw samples on plain PostgreSQL: closed daily partitions rewritten into one row per series
and chunk (``metrics_sample_compressed``: timestamps and values as two pcodec blobs, ``codec``), after which
the row partition is dropped: 0.43 byte per value on TSBS cpu-only data and 1.5 on demo-agent-like data,
instead of 108 as rows (indexes included; bench/README.md, "Compressed raw partitions").

* ``compress_partition`` rewrites one day in the caller's transaction: the partition is locked against
  writes (reads go on), its rows are read with binary COPY a range of series at a time, merged with chunks
  already stored for that day and series (a partition re-created by late samples after an earlier
  compression; the row -- the later write -- wins a repeated (series_id, time)), written as chunks, and
  the partition is dropped through the owner's function. A crash leaves the day as it was; running it
  again does the same work.
* ``read_params`` is the read side: the chunks overlapping a window, decoded, as three arrays for
  ``RAW_SOURCE``, the subquery every raw reader selects from instead of the bare table; it leaves out the
  chunk samples the row side also holds (late samples for a compressed day land there: DEFAULT, or the
  day partition ``metrics.ensure_partitions`` re-creates), so the later write wins.

A reader runs ``read_params`` and its statement over ``RAW_SOURCE`` in one transaction; the lookup holds
the parent table's lock, so a compression committing in between cannot drop the rows it did not see as
chunks (``read_params``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from apps.metrics.storage import codec, ddl, partitioned
from apps.metrics.storage.common import _PG_EPOCH_US, TABLE

COMPRESSED_TABLE = f"{TABLE}_compressed"
# A chunk never spans more than its day (it comes from one daily partition), which bounds the index scan.
CHUNK_SPAN = dt.timedelta(days=1)
# Longer series are split, so a read of an hour never decodes more than this many values per series.
MAX_CHUNK_VALUES = 100_000
# Rows read and rewritten at a time (~34 MB of COPY data), so a day of any size compresses in bounded memory.
BATCH_ROWS = 1_000_000
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
# Every raw reader selects from this instead of the table: the row side plus the decoded chunk samples of
# its window (``read_params``: ``%(ct)s`` microseconds since the epoch, ``%(cs)s`` series ids, ``%(cv)s``
# values, as array literals, see ``array_literal``) whose (series_id, time) the row side does not hold: a row
# there is a later write (late samples for a compressed day land on the row side), and checking it in the
# same statement reads both at one snapshot. Conditions on the whole are pushed into both branches by
# PostgreSQL, so the row side keeps its partition pruning and index.
RAW_SOURCE = (
    f"(SELECT time, series_id, value FROM {TABLE} UNION ALL "  # noqa: S608 - names are ours
    "SELECT ct.time, c.sid, c.v FROM unnest(%(ct)s::bigint[], %(cs)s::integer[], %(cv)s::double precision[]) "
    "AS c(t, sid, v) CROSS JOIN LATERAL (SELECT timestamptz 'epoch' + c.t * interval '1 microsecond' AS time) "
    f"AS ct WHERE NOT EXISTS (SELECT 1 FROM {TABLE} AS r WHERE r.series_id = c.sid AND r.time = ct.time))"
)
EMPTY_PARAMS: dict[str, Any] = {"ct": "{}", "cs": "{}", "cv": "{}"}

# Binary COPY rows of (series_id int4, time timestamptz, value float8), after the 19-byte header.
_COPY_HEADER = 19
_ROW = np.dtype([("n", ">i2"), ("l1", ">i4"), ("sid", ">i4"), ("l2", ">i4"), ("t", ">i8"), ("l3", ">i4"),
                 ("v", ">f8")])


def create_table(cursor: Any) -> None:
    """The chunk table. STORAGE MAIN keeps the (already compressed) blobs in the row while it fits a page,
    so a chunk is one heap fetch; lz4 makes PostgreSQL's own compression attempt on them cheap."""
    cursor.execute(
        f"""CREATE TABLE IF NOT EXISTS {COMPRESSED_TABLE} (
            series_id integer NOT NULL,
            first_time timestamptz NOT NULL,
            last_time timestamptz NOT NULL,
            count integer NOT NULL,
            times bytea NOT NULL,
            "values" bytea NOT NULL,
            CONSTRAINT {COMPRESSED_TABLE}_pkey PRIMARY KEY (series_id, first_time)
        )"""
    )
    for column in ("times", '"values"'):
        cursor.execute(f"ALTER TABLE {COMPRESSED_TABLE} ALTER COLUMN {column} SET STORAGE MAIN")
    # Rollup steps and retention look chunks up by time over all series.
    cursor.execute(f"CREATE INDEX IF NOT EXISTS {COMPRESSED_TABLE}_first_time ON {COMPRESSED_TABLE} (first_time)")


def drop_table(cursor: Any) -> None:
    cursor.execute(f"DROP TABLE IF EXISTS {COMPRESSED_TABLE}")


def _ts(us: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(microseconds=int(us))


def _us(moment: dt.datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def copy_binary(cursor: Any, sql: str, params: list[Any], row: np.dtype) -> np.ndarray:
    """The rows of a binary COPY of ``sql`` as one structured array of dtype ``row`` (the field count, then
    each field's int32 length and big-endian value: fixed-width, NOT NULL columns only): exact (no text
    round trip) and without a Python object per row. Read to the end before anything else runs on the
    connection (a COPY in progress owns it). Shared by raw and rollup compression."""
    buffer = bytearray()
    with cursor.copy(f"COPY ({sql}) TO STDOUT (FORMAT BINARY)", params) as copy:
        for data in copy:
            buffer += data
    body = len(buffer) - _COPY_HEADER - 2  # the header, then rows, then the int16 -1 trailer
    if body <= 0:
        return np.empty(0, dtype=row)
    return np.frombuffer(bytes(buffer[_COPY_HEADER:_COPY_HEADER + body]), dtype=row)


def _copy_rows(cursor: Any, sql: str, params: list[Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(series ids, unix microseconds, values) of a binary COPY of (series_id, time, value)."""
    rows = copy_binary(cursor, sql, params, _ROW)
    return rows["sid"].astype(np.int32), rows["t"].astype(np.int64) + _PG_EPOCH_US, rows["v"].astype(np.float64)


def _batches(cursor: Any, table: str) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The table's rows ordered by (series_id, time), in batches of whole series of about
    ``BATCH_ROWS`` rows: each batch is a range of series ids, sized from the rows per id seen so far, and
    the next range starts at the next id present (one index probe), so sparse ids cost nothing."""
    sql = (f"SELECT series_id, time, value FROM {table} "  # noqa: S608 - names are ours
           "WHERE series_id >= %s AND series_id < %s ORDER BY series_id, time")
    width = 64
    cursor.execute(f"SELECT min(series_id) FROM {table}")  # noqa: S608
    first = cursor.fetchone()[0]
    while first is not None:
        after = first + width
        sids, ts, vs = _copy_rows(cursor, sql, [first, after])
        if sids.size:
            yield sids, ts, vs
            width = int(min(max(width * BATCH_ROWS / sids.size, 1), 1 << 20))
        else:
            width *= 4
        cursor.execute(f"SELECT min(series_id) FROM {table} WHERE series_id >= %s", [after])  # noqa: S608
        first = cursor.fetchone()[0]


def _series_runs(sids: np.ndarray) -> Iterable[tuple[int, int, int]]:
    """(series id, start, stop) of each run of one id in a sorted array."""
    starts = np.concatenate(([0], np.flatnonzero(np.diff(sids)) + 1))
    stops = np.append(starts[1:], sids.size)
    return zip(sids[starts].tolist(), starts.tolist(), stops.tolist(), strict=True)


def merge_later_wins(old_t: np.ndarray, old_v: np.ndarray, new_t: np.ndarray,
                     new_v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One series' samples in time order, one per timestamp; of a repeated timestamp the ``new`` one."""
    t = np.concatenate((old_t, new_t))
    v = np.concatenate((old_v, new_v))
    order = np.argsort(t, kind="stable")  # stable: old before new among equal times
    t, v = t[order], v[order]
    keep = np.append(t[1:] != t[:-1], True)  # the last of each run of equal times
    return t[keep], v[keep]


def _chunks(sid: int, t: np.ndarray, v: np.ndarray) -> Iterator[tuple[Any, ...]]:
    for at in range(0, t.size, MAX_CHUNK_VALUES):
        pt, pv = t[at:at + MAX_CHUNK_VALUES], v[at:at + MAX_CHUNK_VALUES]
        yield (sid, _ts(pt[0]), _ts(pt[-1]), int(pt.size), codec.encode_times(pt), codec.encode_values(pv))


def _write_series(cursor: Any, sids: np.ndarray, ts: np.ndarray, vs: np.ndarray, lo: dt.datetime,
                  hi: dt.datetime) -> tuple[int, int]:
    """Store the rows (sorted by series, time) as chunks, merged with the chunks the day already
    has for those series; returns (series, chunks written)."""
    runs = list(_series_runs(sids))
    cursor.execute(
        f"""DELETE FROM {COMPRESSED_TABLE} WHERE series_id = ANY(%s) AND first_time >= %s AND first_time < %s
        RETURNING series_id, times, "values" """,  # noqa: S608
        [[sid for sid, _, _ in runs], lo, hi],
    )
    earlier: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
    for sid, times, values in cursor.fetchall():
        earlier.setdefault(sid, []).append((codec.decode_times(times), codec.decode_values(values)))
    rows: list[tuple[Any, ...]] = []
    for sid, start, stop in runs:
        t, v = ts[start:stop], vs[start:stop]
        for old_t, old_v in earlier.get(sid, []):
            t, v = merge_later_wins(old_t, old_v, t, v)
        rows.extend(_chunks(sid, t, v))
    cursor.executemany(
        f'INSERT INTO {COMPRESSED_TABLE} (series_id, first_time, last_time, count, times, "values") '  # noqa: S608
        "VALUES (%s, %s, %s, %s, %s, %s)",
        rows,
    )
    return len(runs), len(rows)


def compress_partition(cursor: Any, day: dt.date) -> dict[str, int]:
    """Rewrite the raw partition of ``day`` into chunks and drop it, in the caller's transaction; returns
    rows, series and chunks. Writes to that day wait for the commit (and then land in DEFAULT)."""
    name = partitioned.partition_name(day)
    lo = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    hi = lo + dt.timedelta(days=1)
    cursor.execute(f"LOCK TABLE {name} IN EXCLUSIVE MODE")
    done = {"rows": 0, "series": 0, "chunks": 0}
    for sids, ts, vs in _batches(cursor, name):
        series, chunks = _write_series(cursor, sids, ts, vs, lo, hi)
        done["rows"] += int(sids.size)
        done["series"] += series
        done["chunks"] += chunks
    with ddl.waiting_for_readers_at_most(cursor):  # the drop needs the parent to itself
        ddl.drop_partition(cursor, TABLE, name)
    return done


def read_params(cursor: Any, lo: dt.datetime, hi: dt.datetime,
                series_ids: list[int] | None = None) -> dict[str, Any]:
    """The parameters of ``RAW_SOURCE`` for reads within [lo, hi] (of ``series_ids``, or all series): the
    chunk samples in that range."""
    # NOT EXISTS (ONLY the parent): always true and reads nothing, but the statement takes the parent's
    # ACCESS SHARE lock for the caller's transaction. Compression drops a partition only with the parent
    # locked exclusively, so it waits for the caller's next statement: the chunks looked up here and the
    # rows read there are one consistent state (callers run both in one transaction).
    where = f"first_time <= %s AND first_time > %s AND last_time >= %s AND NOT EXISTS (SELECT FROM ONLY {TABLE})"
    params: list[Any] = [hi, lo - CHUNK_SPAN, lo]
    if series_ids is not None:
        where += " AND series_id = ANY(%s)"
        params.append(list(series_ids))
    cursor.execute(f'SELECT series_id, times, "values" FROM {COMPRESSED_TABLE} WHERE {where}', params)  # noqa: S608
    found = cursor.fetchall()
    if not found:
        return EMPTY_PARAMS
    lo_us, hi_us = _us(lo), _us(hi)
    parts_t, parts_s, parts_v = [], [], []
    for sid, times, values in found:
        t, v = codec.decode_times(times), codec.decode_values(values)
        inside = (t >= lo_us) & (t <= hi_us)
        parts_t.append(t[inside])
        parts_v.append(v[inside])
        parts_s.append(np.full(int(inside.sum()), sid, dtype=np.int64))
    t, s, v = np.concatenate(parts_t), np.concatenate(parts_s), np.concatenate(parts_v)
    if not t.size:
        return EMPTY_PARAMS
    return {"ct": array_literal(map(str, t.tolist())), "cs": array_literal(map(str, s.tolist())),
            "cv": array_literal(map(repr, v.tolist()))}


def array_literal(items: Iterable[str]) -> str:
    """An array literal. Django binds parameters client-side, and psycopg quotes a list element by element
    in Python; one string costs a join. ``repr`` is the shortest text that parses back to the same
    float64, which PostgreSQL's float8in does for every finite value (the doors store no NaN or infinity;
    the codec itself keeps every bit pattern)."""
    return "{" + ",".join(items) + "}"


def drop_chunks_before(cursor: Any, cutoff: dt.datetime) -> int:
    """Retention: delete the chunks holding only samples before ``cutoff``; returns how many."""
    cursor.execute(f"DELETE FROM {COMPRESSED_TABLE} WHERE first_time < %s AND last_time < %s",  # noqa: S608
                   [cutoff, cutoff])
    return int(cursor.rowcount)
