"""Compressed rollup partitions on plain PostgreSQL: a closed partition of a tier (1m day, 5m week, 1h month,
1d year) rewritten into one row per series (``metrics_rollup_<tier>_compressed``), after which the row
partition is dropped -- the raw tier's mechanism (``apps.metrics.storage.compressed``) applied to buckets.

Why: a 1m bucket row costs ~190 bytes (tuple header, nine columns, two ``int[]`` sketches with 24-byte array
headers each, the primary key), i.e. 31.9 B per raw value it summarises at 10 s; most of it is overhead that
a column-wise encoding of a day of one series does not pay. A chunk stores each column as one pcodec array
(``storage.codec``):

* bucket starts (regular: delta-of-delta to almost nothing), counts, sums, mins, maxes, lasts;
* the sketch of every bucket as three integer arrays: bins per bucket, bin keys and bin counts, keys
  **delta-coded** (a bucket's first key against the previous bucket's first key, later keys against the
  key before them in the bucket: small positive numbers for any metric that moves less than a binade per
  bucket) and counts as they are (mostly 1 in fine tiers, pcodec finds that);
* the values of the buckets that kept them instead of a sketch (``exact_values``; a bucket with no bins),
  in bucket order, as one more float array (NULL in chunks written before migration 0010: none kept any).

Lossless: a decoded chunk gives back every column bit for bit and every sketch bin for bin, so percentiles
keep exactly the error bound of ``apps.metrics.sketch`` (and merges into coarser tiers stay exact).

* ``compress_partition`` rewrites one partition in the caller's transaction: locked against writes, read
  with binary COPY a range of series at a time, merged with every chunk already stored for it (the hour
  chunks of ``compress_range``, or a partition re-created by a late re-roll after an earlier compression:
  the row -- the later write -- wins a bucket), written as one chunk per series, and dropped through the
  owner's function.
* ``compress_range`` does the same for whole closed hours of a partition still open (the 1m tier's day):
  chunks per series per range, merged likewise, and the range's rows DELETEd -- so a live installation
  keeps only its last hours as rows. ``compress_partition`` folds those chunks into one per day later.
* ``source_sql(tier)`` is the read side: the tier's rows UNION the decoded chunk buckets of the window
  (``read_params``, as array parameters) whose (series_id, bucket) the row side does not hold. Every reader
  of a tier -- the coarser tier's job, the query API, the quarantine helpers -- selects from it instead of
  the bare table, in one transaction with ``read_params`` (whose lookup holds the parent's lock, so a
  compression committing in between cannot drop rows the reader did not see as chunks).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache, reduce
from typing import Any

import numpy as np

from apps.metrics.rollups.tiers import TIERS, TierSpec
from apps.metrics.sketch import QuantileSketch
from apps.metrics.storage import codec, ddl
from apps.metrics.storage.common import _PG_EPOCH_US
from apps.metrics.storage.compressed import _ts, _us, array_literal, copy_binary

COLUMNS = "bucket, series_id, count, sum, min, max, last, exact_values, sketch_keys, sketch_counts"
# Buckets (and their bins) read and rewritten at a time, so a partition of any size compresses in bounded memory.
BATCH_BUCKETS = 200_000
# The longest partition of each width: a chunk never spans more (it comes from one partition).
_SPAN = {"day": dt.timedelta(days=1), "week": dt.timedelta(days=7), "month": dt.timedelta(days=31),
         "year": dt.timedelta(days=366)}
# Series whose chunks are folded into one at a time when their partition holds no rows of them any more.
FOLD_SERIES = 200
_SCALAR_BLOBS = ("buckets", "counts", "sums", "mins", "maxs", "lasts")
_SKETCH_BLOBS = ("bins", "sketch_keys", "sketch_counts")
# Added by migration 0010, nullable: the chunks written before it have no bucket that kept its values.
EXACT_BLOB = "exact_values"
_BLOBS = (*_SCALAR_BLOBS, *_SKETCH_BLOBS, EXACT_BLOB)

# Binary COPY rows (see ``storage.compressed.copy_binary``): a bucket's scalar columns, its bin count and its
# kept-value count, then, in a second COPY, its bins in key order and, in a third, its kept values in order.
_STATS_ROW = np.dtype([("n", ">i2"), ("l1", ">i4"), ("sid", ">i4"), ("l2", ">i4"), ("b", ">i8"), ("l3", ">i4"),
                       ("count", ">i8"), ("l4", ">i4"), ("sum", ">f8"), ("l5", ">i4"), ("min", ">f8"),
                       ("l6", ">i4"), ("max", ">f8"), ("l7", ">i4"), ("last", ">f8"), ("l8", ">i4"),
                       ("bins", ">i4"), ("l9", ">i4"), ("kept", ">i4")])
_BIN_ROW = np.dtype([("n", ">i2"), ("l1", ">i4"), ("k", ">i4"), ("l2", ">i4"), ("c", ">i4")])
_VALUE_ROW = np.dtype([("n", ">i2"), ("l1", ">i4"), ("v", ">f8")])


def table(tier: TierSpec) -> str:
    return f"{tier.table}_compressed"


@dataclass
class Buckets:
    """One series' buckets column-wise: scalars per bucket, sketches as ``bins`` per bucket plus the flat
    ``keys``/``counts`` of all bins in bucket order (each bucket's keys ascending), and the values of the
    buckets that kept them as ``kept`` per bucket (0 for a sketch) plus the flat ``exact`` values (each
    bucket's ascending)."""

    bucket: np.ndarray  # int64 µs since the Unix epoch
    count: np.ndarray  # int64
    sum: np.ndarray  # float64
    min: np.ndarray
    max: np.ndarray
    last: np.ndarray
    bins: np.ndarray  # int64
    keys: np.ndarray  # int64
    counts: np.ndarray  # int64
    kept: np.ndarray  # int64
    exact: np.ndarray  # float64

    @property
    def size(self) -> int:
        return int(self.bucket.size)

    def offsets(self) -> np.ndarray:
        return np.cumsum(self.bins) - self.bins

    def exact_offsets(self) -> np.ndarray:
        return np.cumsum(self.kept) - self.kept

    def take(self, idx: np.ndarray) -> Buckets:
        """The buckets at ``idx`` (in that order), their bins and values with them."""
        idx = np.asarray(idx, dtype=np.int64)
        bins, kept = self.bins[idx], self.kept[idx]
        bin_at, value_at = _positions(self.offsets()[idx], bins), _positions(self.exact_offsets()[idx], kept)
        return Buckets(self.bucket[idx], self.count[idx], self.sum[idx], self.min[idx], self.max[idx],
                       self.last[idx], bins, self.keys[bin_at], self.counts[bin_at], kept, self.exact[value_at])

    @classmethod
    def concat(cls, parts: list[Buckets]) -> Buckets:
        return cls(*(np.concatenate([getattr(p, name) for p in parts]) for name in cls.__dataclass_fields__))

    def sketch(self, i: int) -> tuple[list[int], list[int]]:
        """Bucket ``i``'s (keys, counts), as stored in the row columns."""
        start = int(self.offsets()[i])
        stop = start + int(self.bins[i])
        return self.keys[start:stop].tolist(), self.counts[start:stop].tolist()

    def sketched(self) -> Buckets:
        """These buckets with every kept value turned into its sketch bin (what ``migrate`` back stores)."""
        bins, keys, counts = [], [], []
        for i in range(self.size):
            bucket_keys, bucket_counts = (QuantileSketch.of(self.values(i)).to_arrays() if self.kept[i]
                                          else self.sketch(i))
            bins.append(len(bucket_keys))
            keys += bucket_keys
            counts += bucket_counts
        nothing = np.zeros(self.size, dtype=np.int64)
        return Buckets(self.bucket, self.count, self.sum, self.min, self.max, self.last,
                       np.array(bins, dtype=np.int64), np.array(keys, dtype=np.int64),
                       np.array(counts, dtype=np.int64), nothing, np.empty(0, np.float64))

    def values(self, i: int) -> list[float]:
        """Bucket ``i``'s kept values (empty for a sketch), as stored in ``exact_values``."""
        start = int(self.exact_offsets()[i])
        return self.exact[start:start + int(self.kept[i])].tolist()


def _positions(offsets: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Indexes into a flat array of the runs starting at ``offsets`` with ``sizes``, run after run."""
    starts = np.cumsum(sizes) - sizes
    return np.repeat(offsets - starts, sizes) + np.arange(int(sizes.sum()), dtype=np.int64)


def delta_keys(keys: np.ndarray, bins: np.ndarray) -> np.ndarray:
    """Keys as small numbers: a bucket's first key minus the previous bucket's first key, each later key
    minus the one before it in its bucket (positive: keys ascend within a bucket)."""
    out = np.diff(keys, prepend=0)
    nonempty = bins > 0
    starts = (np.cumsum(bins) - bins)[nonempty]
    out[starts] = np.diff(keys[starts], prepend=0)
    return out


def undelta_keys(deltas: np.ndarray, bins: np.ndarray) -> np.ndarray:
    """The inverse of ``delta_keys``."""
    nonempty = bins > 0
    starts = (np.cumsum(bins) - bins)[nonempty]
    firsts = np.cumsum(deltas[starts])
    inner = deltas.copy()
    inner[starts] = 0
    running = np.cumsum(inner)
    return np.repeat(firsts - running[starts], bins[nonempty]) + running


def encode(b: Buckets) -> dict[str, bytes]:
    """The chunk's blobs, one pcodec array per column (``_BLOBS``)."""
    return {
        "buckets": codec.encode_ints(b.bucket), "counts": codec.encode_ints(b.count),
        "sums": codec.encode_values(b.sum), "mins": codec.encode_values(b.min),
        "maxs": codec.encode_values(b.max), "lasts": codec.encode_values(b.last),
        "bins": codec.encode_ints(b.bins), "sketch_keys": codec.encode_ints(delta_keys(b.keys, b.bins)),
        "sketch_counts": codec.encode_ints(b.counts), EXACT_BLOB: codec.encode_values(b.exact),
    }


def decode(blobs: dict[str, bytes | None] | tuple[bytes | None, ...]) -> Buckets:
    """A chunk's buckets; given the scalar blobs only (``_SCALAR_BLOBS``), without sketches or kept values."""
    if not isinstance(blobs, dict):
        blobs = dict(zip(_BLOBS, blobs, strict=True))
    times = codec.decode_ints(blobs["buckets"])
    bucket_counts = codec.decode_ints(blobs["counts"])
    nothing = np.zeros(times.size, dtype=np.int64)
    if "bins" in blobs:
        bins = codec.decode_ints(blobs["bins"])
        keys = undelta_keys(codec.decode_ints(blobs["sketch_keys"]), bins)
        counts = codec.decode_ints(blobs["sketch_counts"])
        # A bucket without bins kept its values (every stored bucket holds at least one).
        exact_blob = blobs.get(EXACT_BLOB)
        kept = np.where(bins == 0, bucket_counts, 0) if exact_blob is not None else nothing
        exact = codec.decode_values(exact_blob) if exact_blob is not None else np.empty(0, np.float64)
    else:
        bins, kept = nothing, nothing
        keys, counts, exact = np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float64)
    return Buckets(
        times, bucket_counts, codec.decode_values(blobs["sums"]),
        codec.decode_values(blobs["mins"]), codec.decode_values(blobs["maxs"]), codec.decode_values(blobs["lasts"]),
        bins, keys, counts, kept, exact,
    )


def _blob_bytes(columns: tuple[Any, ...]) -> tuple[bytes | None, ...]:
    """Blob columns as fetched (memoryview, or NULL for a blob added after the chunk was written) as bytes."""
    return tuple(None if b is None else bytes(b) for b in columns)


def merge_later_wins(old: Buckets, new: Buckets) -> Buckets:
    """One series' buckets in time order, one per bucket start; of a repeated start the ``new`` one."""
    both = Buckets.concat([old, new])
    order = np.argsort(both.bucket, kind="stable")  # stable: old before new among equal starts
    starts = both.bucket[order]
    keep = np.append(starts[1:] != starts[:-1], True)  # the last of each run of equal starts
    return both.take(order[keep])


# -- DDL ------------------------------------------------------------------------------------------------------

def create_tables(cursor: Any) -> None:
    """One chunk table per tier (migration 0008; on TimescaleDB they stay empty, the SQL is one). STORAGE
    MAIN keeps the (already compressed) blobs in the row while they fit a page: a chunk is one heap fetch."""
    for tier in TIERS:
        name = table(tier)
        blobs = ", ".join(f"{column} bytea NOT NULL" for column in (*_SCALAR_BLOBS, *_SKETCH_BLOBS))
        cursor.execute(
            f"""CREATE TABLE IF NOT EXISTS {name} (
                series_id integer NOT NULL,
                first_bucket timestamptz NOT NULL,
                last_bucket timestamptz NOT NULL,
                buckets_count integer NOT NULL,
                {blobs},
                CONSTRAINT {name}_pkey PRIMARY KEY (series_id, first_bucket)
            )"""
        )
        for column in (*_SCALAR_BLOBS, *_SKETCH_BLOBS):
            cursor.execute(f"ALTER TABLE {name} ALTER COLUMN {column} SET STORAGE MAIN")
        # The coarser tier's job and retention look chunks up by time over all series.
        cursor.execute(f"CREATE INDEX IF NOT EXISTS {name}_first_bucket ON {name} (first_bucket)")


def add_exact_blob(cursor: Any) -> None:
    """Migration 0010: the chunk tables get the (nullable) blob of kept values."""
    for tier in TIERS:
        cursor.execute(f"ALTER TABLE {table(tier)} ADD COLUMN {EXACT_BLOB} bytea")
        cursor.execute(f"ALTER TABLE {table(tier)} ALTER COLUMN {EXACT_BLOB} SET STORAGE MAIN")


def remove_exact_blob(cursor: Any) -> None:
    """Migration 0010 backwards: every chunk holding kept values is rewritten with their sketches instead (the
    bins ``QuantileSketch`` gives, equal to the SQL rollup's), then the blob column goes."""
    for tier in TIERS:
        cursor.execute(f"SELECT series_id, first_bucket, {', '.join(_BLOBS)} FROM {table(tier)} "  # noqa: S608
                       f"WHERE {EXACT_BLOB} IS NOT NULL FOR UPDATE")
        for sid, first, *blobs in cursor.fetchall():
            chunk = decode(_blob_bytes(tuple(blobs)))
            if chunk.kept.any():
                encoded = encode(chunk.sketched())
                cursor.execute(
                    f"UPDATE {table(tier)} SET {', '.join(f'{c} = %s' for c in _SKETCH_BLOBS)} "  # noqa: S608
                    "WHERE series_id = %s AND first_bucket = %s",
                    [*(encoded[c] for c in _SKETCH_BLOBS), sid, first],
                )
        cursor.execute(f"ALTER TABLE {table(tier)} DROP COLUMN {EXACT_BLOB}")


def drop_tables(cursor: Any) -> None:
    for tier in TIERS:
        cursor.execute(f"DROP TABLE IF EXISTS {table(tier)}")


# -- writing --------------------------------------------------------------------------------------------------

def _read_batch(cursor: Any, part: str, first: int, after: int, lo: dt.datetime,
                hi: dt.datetime) -> tuple[np.ndarray, Buckets]:
    """(series id per bucket, the buckets) of series ids [first, after) and buckets [lo, hi) of partition
    ``part``, ordered by (series_id, bucket)."""
    where = "WHERE r.series_id >= %s AND r.series_id < %s AND r.bucket >= %s AND r.bucket < %s"
    params = [first, after, lo, hi]
    stats = copy_binary(
        cursor,
        f"SELECT r.series_id, r.bucket, r.count, r.sum, r.min, r.max, r.last, "  # noqa: S608
        f"coalesce(cardinality(r.sketch_keys), 0), coalesce(cardinality(r.exact_values), 0) "
        f"FROM {part} AS r {where} ORDER BY r.series_id, r.bucket",
        params, _STATS_ROW,
    )
    bins = copy_binary(
        cursor,
        f"SELECT u.k, u.n FROM {part} AS r CROSS JOIN LATERAL unnest(r.sketch_keys, r.sketch_counts) AS u(k, n) "  # noqa: S608
        f"{where} ORDER BY r.series_id, r.bucket, u.k",
        params, _BIN_ROW,
    )
    values = copy_binary(
        cursor,
        f"SELECT e.v FROM {part} AS r CROSS JOIN LATERAL unnest(r.exact_values) WITH ORDINALITY AS e(v, i) "  # noqa: S608
        f"{where} ORDER BY r.series_id, r.bucket, e.i",
        params, _VALUE_ROW,
    )
    buckets = Buckets(
        stats["b"].astype(np.int64) + _PG_EPOCH_US, stats["count"].astype(np.int64),
        stats["sum"].astype(np.float64), stats["min"].astype(np.float64), stats["max"].astype(np.float64),
        stats["last"].astype(np.float64), stats["bins"].astype(np.int64), bins["k"].astype(np.int64),
        bins["c"].astype(np.int64), stats["kept"].astype(np.int64), values["v"].astype(np.float64),
    )
    return stats["sid"].astype(np.int64), buckets


def _batches(cursor: Any, part: str, lo: dt.datetime, hi: dt.datetime) -> Iterator[tuple[np.ndarray, Buckets]]:
    """The partition's buckets of [lo, hi) in batches of whole series of about ``BATCH_BUCKETS`` buckets (a
    range of series ids sized from the buckets per id seen so far; the next range starts at the next id
    present)."""
    width = 64
    in_range = "bucket >= %s AND bucket < %s"
    cursor.execute(f"SELECT min(series_id) FROM {part} WHERE {in_range}", [lo, hi])  # noqa: S608
    first = cursor.fetchone()[0]
    while first is not None:
        after = first + width
        sids, buckets = _read_batch(cursor, part, first, after, lo, hi)
        if sids.size:
            yield sids, buckets
            width = int(min(max(width * BATCH_BUCKETS / sids.size, 1), 1 << 20))
        else:
            width *= 4
        cursor.execute(f"SELECT min(series_id) FROM {part} WHERE series_id >= %s AND {in_range}",  # noqa: S608
                       [after, lo, hi])
        first = cursor.fetchone()[0]


def _take_chunks(cursor: Any, tier: TierSpec, ids: list[int], lo: dt.datetime,
                 hi: dt.datetime) -> dict[int, Buckets]:
    """DELETE the chunks of series ``ids`` holding buckets of [lo, hi) and return their buckets, every chunk
    of a series merged into one ``Buckets`` (in ``first_bucket`` order: a later-starting chunk wins a bucket
    two hold, which the writers never produce). A chunk never spans two partitions, so within [lo, hi)'s
    partition "holds buckets of [lo, hi)" is "starts before ``hi`` and ends at or after ``lo``"."""
    cursor.execute(
        f"DELETE FROM {table(tier)} WHERE series_id = ANY(%s) AND first_bucket < %s AND first_bucket > %s "  # noqa: S608
        f"AND last_bucket >= %s RETURNING series_id, first_bucket, {', '.join(_BLOBS)}",
        [ids, hi, lo - _SPAN[tier.partition], lo],
    )
    found: dict[int, list[Buckets]] = {}
    for row in sorted(cursor.fetchall(), key=lambda r: (r[0], r[1])):
        found.setdefault(row[0], []).append(decode(_blob_bytes(row[2:])))
    return {sid: reduce(merge_later_wins, parts) for sid, parts in found.items()}


def _insert_chunks(cursor: Any, tier: TierSpec, chunks: list[tuple[int, Buckets]]) -> int:
    """Store one chunk per (series id, buckets); returns the buckets written."""
    rows = []
    for sid, chunk in chunks:
        blobs = encode(chunk)
        rows.append((sid, _ts(chunk.bucket[0]), _ts(chunk.bucket[-1]), chunk.size, *(blobs[c] for c in _BLOBS)))
    cursor.executemany(
        f"INSERT INTO {table(tier)} (series_id, first_bucket, last_bucket, buckets_count, {', '.join(_BLOBS)}) "  # noqa: S608
        f"VALUES ({', '.join(['%s'] * (4 + len(_BLOBS)))})",
        rows,
    )
    return sum(chunk.size for _, chunk in chunks)


def _write(cursor: Any, tier: TierSpec, sids: np.ndarray, buckets: Buckets, lo: dt.datetime,
           hi: dt.datetime) -> tuple[int, int]:
    """Store a batch (sorted by series, bucket) as one chunk per series, merged with all the chunks those
    series already have in [lo, hi) (rows win); returns (series, buckets written)."""
    starts = np.concatenate(([0], np.flatnonzero(np.diff(sids)) + 1))
    stops = np.append(starts[1:], sids.size)
    ids = sids[starts].tolist()
    earlier = _take_chunks(cursor, tier, ids, lo, hi)
    chunks = []
    for sid, start, stop in zip(ids, starts.tolist(), stops.tolist(), strict=True):
        chunk = buckets.take(np.arange(start, stop))
        if sid in earlier:
            chunk = merge_later_wins(earlier[sid], chunk)
        chunks.append((sid, chunk))
    return len(chunks), _insert_chunks(cursor, tier, chunks)


def _fold_chunks(cursor: Any, tier: TierSpec, lo: dt.datetime, hi: dt.datetime) -> tuple[int, int]:
    """Merge the series that have several chunks in [lo, hi) but no rows left there (every hour of theirs
    compressed by ``compress_range``) into one chunk each; returns (series, buckets written)."""
    series = written = 0
    while True:
        cursor.execute(
            f"SELECT series_id FROM {table(tier)} WHERE first_bucket >= %s AND first_bucket < %s "  # noqa: S608
            "GROUP BY series_id HAVING count(*) > 1 ORDER BY series_id LIMIT %s",
            [lo, hi, FOLD_SERIES],
        )
        ids = [row[0] for row in cursor.fetchall()]
        if not ids:
            return series, written
        merged = _take_chunks(cursor, tier, ids, lo, hi)
        written += _insert_chunks(cursor, tier, sorted(merged.items()))
        series += len(merged)


def compress_partition(cursor: Any, tier: TierSpec, part: str, lo: dt.datetime, hi: dt.datetime) -> dict[str, int]:
    """Rewrite partition ``part`` of ``tier`` (bounds [lo, hi)) and the chunks stored for it into one chunk
    per series, and drop it, in the caller's transaction; returns buckets and series. Rollup writes to it
    wait for the commit (and then re-create the partition: ``storage.ensure_range``)."""
    cursor.execute(f"LOCK TABLE {part} IN EXCLUSIVE MODE")
    done = {"buckets": 0, "series": 0}
    for sids, buckets in _batches(cursor, part, lo, hi):
        series, written = _write(cursor, tier, sids, buckets, lo, hi)
        done["buckets"] += written
        done["series"] += series
    series, written = _fold_chunks(cursor, tier, lo, hi)
    done["buckets"] += written
    done["series"] += series
    with ddl.waiting_for_readers_at_most(cursor):  # the drop needs the parent to itself
        ddl.drop_partition(cursor, tier.table, part)
    return done


def compress_range(cursor: Any, tier: TierSpec, part: str, lo: dt.datetime, hi: dt.datetime) -> dict[str, int]:
    """Compress the rows of [lo, hi) of partition ``part`` (still open: other buckets of it keep being
    written) into one chunk per series -- merged with the chunks those series already have there, rows
    winning -- and DELETE them, in the caller's transaction; returns rows, buckets and series. The caller
    commits right after: the last statement makes every reader of the tier wait for that commit."""
    cursor.execute(f"LOCK TABLE {part} IN EXCLUSIVE MODE")  # rollup writes wait (the job is paused anyway)
    done = {"rows": 0, "buckets": 0, "series": 0}
    for sids, buckets in _batches(cursor, part, lo, hi):
        series, written = _write(cursor, tier, sids, buckets, lo, hi)
        done["rows"] += int(sids.size)
        done["buckets"] += written
        done["series"] += series
    if not done["rows"]:
        return done
    cursor.execute(f"DELETE FROM {part} WHERE bucket >= %s AND bucket < %s", [lo, hi])  # noqa: S608
    if cursor.rowcount != done["rows"]:  # the partition is locked against writes: never expected
        raise RuntimeError(f"{part} [{lo}, {hi}): read {done['rows']} rows, deleting {cursor.rowcount}")
    # The race this closes: a reader looks chunks up (``read_params``) in one statement and reads rows in a
    # later one. Were this transaction to commit between the two, that reader would see neither the new
    # chunks (looked up before) nor the rows (deleted since) and miss the range. The lookup holds the
    # parent's ACCESS SHARE lock until the reader's transaction ends, so taking ACCESS EXCLUSIVE on the
    # parent here waits for every reader in flight to finish, and a reader starting now queues until this
    # commit, then sees the chunks and not the rows. The rows were deleted before the lock (invisible to
    # readers until the commit), so the exclusive section is the wait plus the commit; a reader holding on
    # longer than ``ddl.READERS_WAIT`` makes this range wait for the next run (lock_timeout) rather than stall
    # every new reader behind it.
    with ddl.waiting_for_readers_at_most(cursor):
        cursor.execute(f"LOCK TABLE ONLY {tier.table} IN ACCESS EXCLUSIVE MODE")
    return done


# -- reading --------------------------------------------------------------------------------------------------

@cache
def source_sql(tier: TierSpec) -> str:
    """The tier's rows (``COLUMNS``) plus the chunk buckets of ``read_params``'s window that the row side
    does not hold (a row there is a later re-roll). Conditions on the whole reach the row side, which keeps
    its partition pruning and primary key.

    Rows win through an anti-join against only the rows of the chunks' series and bucket range (``zids``,
    ``zlo``, ``zhi`` from ``read_params``: constants, so that lookup is pruned to the partitions the range
    overlaps; it normally finds nothing, a row sits in a compressed range only after a late re-roll). The
    chunk side is fenced (``OFFSET 0``) so the caller's conditions stay above it (its buckets are within the
    window already): pushed down onto the ``unnest`` they had the planner estimate it at a row or two and
    probe every partition's index once per chunk bucket in a nested loop (``bench/README.md``, "Rollup
    tiers"); unfiltered, its estimate is the arrays' length and the planner hashes the few rows instead.
    """
    rows = tier.table
    return (
        f"(SELECT {COLUMNS} FROM {rows} UNION ALL SELECT * FROM ("  # noqa: S608 - names are ours
        "SELECT cb.bucket, c.sid, c.n, c.su, c.lo, c.hi, c.la, "
        "CASE WHEN c.l = 0 THEN (%(ze)s::double precision[])[c.eo + 1:c.eo + c.n] END, "
        "CASE WHEN c.l > 0 THEN (%(zk)s::integer[])[c.o + 1:c.o + c.l] END, "
        "CASE WHEN c.l > 0 THEN (%(zn)s::integer[])[c.o + 1:c.o + c.l] END "
        "FROM unnest(%(zb)s::bigint[], %(zs)s::integer[], %(zc)s::bigint[], %(zsum)s::double precision[], "
        "%(zmin)s::double precision[], %(zmax)s::double precision[], %(zlast)s::double precision[], "
        "%(zo)s::integer[], %(zl)s::integer[], %(zeo)s::integer[]) AS c(b, sid, n, su, lo, hi, la, o, l, eo) "
        "CROSS JOIN LATERAL (SELECT timestamptz 'epoch' + c.b * interval '1 microsecond' AS bucket) AS cb "
        f"WHERE NOT EXISTS (SELECT FROM {rows} AS r WHERE r.series_id = ANY(%(zids)s::integer[]) "
        "AND r.bucket >= %(zlo)s::timestamptz AND r.bucket <= %(zhi)s::timestamptz "
        "AND r.series_id = c.sid AND r.bucket = cb.bucket) OFFSET 0) AS z)"
    )


def source_for(tier: TierSpec, params: dict[str, Any]) -> str:
    """``source_sql(tier)`` when ``params`` (from ``read_params``) hold chunk buckets, else the bare table: a
    read whose window has no chunk plans and runs exactly as before compression existed. Safe because the
    lookup holds the parent's lock until the reader's transaction ends (no partition can turn into chunks
    meanwhile)."""
    return source_sql(tier) if params.get("zb", "{}") != "{}" else tier.table


EMPTY_PARAMS: dict[str, Any] = dict.fromkeys(("zb", "zs", "zc", "zsum", "zmin", "zmax", "zlast", "zo", "zl", "zk",
                                              "zn", "ze", "zeo", "zids"), "{}") | {"zlo": None, "zhi": None}


def read_params(cursor: Any, tier: TierSpec, lo: dt.datetime, hi: dt.datetime,
                series_ids: list[int] | None = None, *, sketches: bool = True) -> dict[str, Any]:
    """The parameters of ``source_sql(tier)`` for reads within [lo, hi] (of ``series_ids``, or all
    series): the chunk buckets in that range. ``sketches=False`` leaves the bins and kept values out (the
    chunk buckets' ``exact_values``/``sketch_keys``/``sketch_counts`` read as NULL) for readers of the scalar
    columns only: the bins are most of the text PostgreSQL would parse (a 1h bucket has dozens), and parsing
    the array literals is what a compressed read costs (``bench/README.md``, "Rollup tiers")."""
    sql, params, blobs = _chunk_query(tier, lo, hi, series_ids, sketches)
    cursor.execute(sql, params)
    return _params_from(cursor.fetchall(), blobs, lo, hi, sketches)


def read_params_and_scalar(cursor: Any, tier: TierSpec, lo: dt.datetime, hi: dt.datetime,
                           series_ids: list[int] | None, scalar_sql: str, scalar_params: list[Any], *,
                           sketches: bool = True) -> tuple[Any, dict[str, Any]]:
    """``read_params`` and the value of a timestamptz scalar subquery of the caller's (``scalar_sql``) in one
    round trip: the read API needs the tier's watermark with every rollup read, and a second statement cost
    ~0.5 ms per read even with nothing compressed."""
    sql, params, blobs = _chunk_query(tier, lo, hi, series_ids, sketches, extra="NULL::timestamptz")
    nulls = ", ".join(["NULL::bytea"] * len(blobs))
    cursor.execute(f"SELECT NULL::integer, {nulls}, {scalar_sql} UNION ALL {sql}", [*scalar_params, *params])
    rows = cursor.fetchall()
    scalar = next(row[-1] for row in rows if row[0] is None)
    return scalar, _params_from([row[:-1] for row in rows if row[0] is not None], blobs, lo, hi, sketches)


def _chunk_query(tier: TierSpec, lo: dt.datetime, hi: dt.datetime, series_ids: list[int] | None, sketches: bool,
                 extra: str = "") -> tuple[str, list[Any], tuple[str, ...]]:
    """The SELECT of the chunks overlapping [lo, hi] (of ``series_ids``), its parameters and blob columns."""
    # NOT EXISTS (ONLY the parent): reads nothing but takes the parent's lock for the caller's transaction,
    # so a compression (which drops the partition with the parent locked) waits: chunks and rows agree.
    where = (f"first_bucket <= %s AND first_bucket > %s AND last_bucket >= %s "
             f"AND NOT EXISTS (SELECT FROM ONLY {tier.table})")
    params: list[Any] = [hi, lo - _SPAN[tier.partition], lo]
    if series_ids is not None:
        where += " AND series_id = ANY(%s)"
        params.append(list(series_ids))
    blobs = _BLOBS if sketches else _SCALAR_BLOBS  # without sketches, their blobs are neither read nor decoded
    columns = ", ".join(("series_id", *blobs, *([extra] if extra else [])))
    return f"SELECT {columns} FROM {table(tier)} WHERE {where}", params, blobs  # noqa: S608


def _params_from(found: list[tuple[Any, ...]], blobs: tuple[str, ...], lo: dt.datetime, hi: dt.datetime,
                 sketches: bool) -> dict[str, Any]:
    """``source_sql``'s parameters from the chunk rows (series_id, *blobs): their buckets in [lo, hi], and
    those buckets' series and first and last bucket (what the row-wins anti-join looks rows up in)."""
    if not found:
        return EMPTY_PARAMS
    parts = [decode(dict(zip(blobs, _blob_bytes(row[1:]), strict=True))) for row in found]
    every = Buckets.concat(parts)
    inside = np.flatnonzero((every.bucket >= _us(lo)) & (every.bucket <= _us(hi)))  # one take for all chunks
    if not inside.size:
        return EMPTY_PARAMS
    b = every.take(inside)
    series = np.repeat([row[0] for row in found], [p.size for p in parts])[inside]

    def ints(a: np.ndarray) -> str:
        return array_literal(map(str, a.tolist()))

    def floats(a: np.ndarray) -> str:
        return array_literal(map(repr, a.tolist()))

    # The row-wins anti-join looks rows up within these bounds only (constants: partitions pruned).
    bounds = {"zids": ints(np.unique(series)), "zlo": _ts(b.bucket.min()), "zhi": _ts(b.bucket.max())}
    found_params = {"zb": ints(b.bucket), "zs": ints(series), "zc": ints(b.count),
                    "zsum": floats(b.sum), "zmin": floats(b.min), "zmax": floats(b.max), "zlast": floats(b.last),
                    "zo": "{}", "zl": "{}", "zk": "{}", "zn": "{}", "ze": "{}", "zeo": "{}", **bounds}
    if sketches:
        found_params.update(zo=ints(b.offsets()), zl=ints(b.bins), zk=ints(b.keys), zn=ints(b.counts),
                            ze=floats(b.exact), zeo=ints(b.exact_offsets()))
    return found_params


def drop_chunks_before(cursor: Any, tier: TierSpec, cutoff: dt.datetime) -> int:
    """Retention: delete the chunks holding only buckets before ``cutoff``; returns how many."""
    cursor.execute(f"DELETE FROM {table(tier)} WHERE first_bucket < %s AND last_bucket < %s",  # noqa: S608
                   [cutoff, cutoff])
    return int(cursor.rowcount)


def trim_organization(cursor: Any, tier: TierSpec, organization_id: int, cutoff: dt.datetime) -> int:
    """Retention of an organization shorter than the longest: delete its whole chunks before ``cutoff``
    (a chunk straddling the cutoff stays until it is wholly past; queries hide it meanwhile)."""
    cursor.execute(
        f"DELETE FROM {table(tier)} AS c USING metrics_series AS m "  # noqa: S608
        "WHERE m.id = c.series_id AND m.organization_id = %s AND c.last_bucket < %s",
        [organization_id, cutoff],
    )
    return int(cursor.rowcount)
