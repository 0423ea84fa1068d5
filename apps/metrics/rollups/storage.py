"""Rollup tables, stored like the raw samples: natively RANGE-partitioned by ``bucket`` on plain
PostgreSQL (1m daily, 5m weekly, 1h monthly, 1d yearly partitions) and hypertables with chunks of the
same widths on TimescaleDB. The choice follows the raw table (``apps.metrics.storage.backend_name``),
so one database never mixes the two and nothing above this module branches on it.

There is no DEFAULT partition: only the rollup jobs write these tables, and they create the partitions
their write range needs first (``ensure_range``); the retention job keeps partitions ahead too.

Columns: ``bucket`` (start of the bucket), ``series_id``, ``count`` (bigint), ``sum``, ``min``, ``max``,
``last`` of the finite samples (a sum saturates at the float8 maximum: ``sums``), and either the values
themselves, ascending, as ``exact_values float8[]`` (a bucket of at most ``sketch.EXACT_MAX_COUNT``) or the
quantile sketch as ``sketch_keys int[]``/``sketch_counts int[]`` (``apps.metrics.sketch``); exactly one of
the two is set (rows written before migration 0010 all hold sketches). The primary key
(series_id, bucket) is both the ON CONFLICT target of the idempotent upserts and the index every
query uses ("these series over this time range").

Closed partitions (and the closed hours of the open 1m day) are compressed into per-series chunks on plain
PostgreSQL (``rollups.compressed``, whose ``source_sql`` every reader uses instead of the bare table) and
natively on TimescaleDB (``enable_rollup_compression``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import connection as default_connection

from apps.metrics import storage as raw_storage
from apps.metrics.rollups.tiers import TIERS, TierSpec
from apps.metrics.sketch_sql import sketch_of_values_sql
from apps.metrics.storage import ddl

COLUMNS = "bucket, series_id, count, sum, min, max, last, exact_values, sketch_keys, sketch_counts"
_CHUNK_SQL = {"day": "1 day", "week": "7 days", "month": "1 month", "year": "1 year"}


def _create_table_sql(tier: TierSpec, partitioned: bool) -> str:
    tail = " PARTITION BY RANGE (bucket)" if partitioned else ""
    return f"""
        CREATE TABLE {tier.table} (
            bucket timestamptz NOT NULL,
            series_id integer NOT NULL,
            count bigint NOT NULL,
            sum double precision NOT NULL,
            min double precision NOT NULL,
            max double precision NOT NULL,
            last double precision NOT NULL,
            sketch_keys integer[] NOT NULL,
            sketch_counts integer[] NOT NULL,
            CONSTRAINT {tier.table}_pkey PRIMARY KEY (series_id, bucket)
        ){tail}
    """


def install(connection: Any = None, today: dt.date | None = None) -> None:
    """Create the four rollup tables with the raw table's backend (migration 0003)."""
    connection = connection or default_connection
    timescale = raw_storage.backend_name(connection) == "timescaledb"
    today = today or dt.datetime.now(dt.UTC).date()
    with connection.cursor() as cursor:
        for tier in TIERS:
            cursor.execute(_create_table_sql(tier, partitioned=not timescale))
            if timescale:
                cursor.execute(
                    "SELECT create_hypertable(%s, 'bucket', chunk_time_interval => INTERVAL %s, "
                    "create_default_indexes => false)",
                    [tier.table, _CHUNK_SQL[tier.partition]],
                )
    if not timescale:
        now = dt.datetime.combine(today, dt.time(), tzinfo=dt.UTC)
        for tier in TIERS:
            ensure_range(tier, now - dt.timedelta(days=1), now + dt.timedelta(days=2), connection=connection)


def uninstall(connection: Any = None) -> None:
    connection = connection or default_connection
    with connection.cursor() as cursor:
        for tier in TIERS:
            cursor.execute(f"DROP TABLE IF EXISTS {tier.table} CASCADE")


def set_count_type(sql_type: str, connection: Any = None) -> None:
    """``count`` of every tier as ``bigint`` (migration 0005: a 1d bucket of a 25,000 samples/s series
    passes 2**31) or back to ``integer``. Rewrites the tables (and their partitions) under an exclusive
    lock: on a large installation run it in a quiet moment."""
    if sql_type not in ("bigint", "integer"):
        raise ValueError(f"count is bigint or integer, not {sql_type!r}")
    connection = connection or default_connection
    with connection.cursor() as cursor:
        for tier in TIERS:
            cursor.execute(f"ALTER TABLE {tier.table} ALTER COLUMN count TYPE {sql_type}")


def add_exact_values(connection: Any = None) -> None:
    """Migration 0010: every tier gets ``exact_values float8[]`` and its sketch columns may be NULL (a bucket
    that keeps its values has none). Catalogue changes only: existing rows keep their sketches."""
    connection = connection or default_connection
    with connection.cursor() as cursor:
        for tier in TIERS:
            cursor.execute(f"ALTER TABLE {tier.table} ADD COLUMN exact_values double precision[]")
            cursor.execute(f"ALTER TABLE {tier.table} ALTER COLUMN sketch_keys DROP NOT NULL, "
                           "ALTER COLUMN sketch_counts DROP NOT NULL")


def remove_exact_values(connection: Any = None) -> None:
    """Migration 0010 backwards: the buckets that kept their values get their sketch instead (the same bins
    the rollup would have built), then the column goes and the sketch columns are NOT NULL again."""
    connection = connection or default_connection
    with connection.cursor() as cursor:
        for tier in TIERS:
            cursor.execute(
                f"UPDATE {tier.table} AS t SET (sketch_keys, sketch_counts) = "  # noqa: S608 - names are ours
                f"({sketch_of_values_sql('t.exact_values')}) WHERE t.exact_values IS NOT NULL"
            )
            cursor.execute(f"ALTER TABLE {tier.table} ALTER COLUMN sketch_keys SET NOT NULL, "
                           "ALTER COLUMN sketch_counts SET NOT NULL")
            cursor.execute(f"ALTER TABLE {tier.table} DROP COLUMN exact_values")


def is_partitioned(connection: Any = None) -> bool:
    return raw_storage.backend_name(connection or default_connection) == "partitioned"


# -- plain PostgreSQL partitions -------------------------------------------------------------------------

def partition_start(tier: TierSpec, day: dt.date) -> dt.date:
    """First day of the partition holding ``day``: the day, its ISO week's Monday, month or year."""
    if tier.partition == "day":
        return day
    if tier.partition == "week":
        return day - dt.timedelta(days=day.weekday())
    if tier.partition == "month":
        return day.replace(day=1)
    return day.replace(month=1, day=1)


def partition_end(tier: TierSpec, start: dt.date) -> dt.date:
    if tier.partition == "day":
        return start + dt.timedelta(days=1)
    if tier.partition == "week":
        return start + dt.timedelta(days=7)
    if tier.partition == "month":
        return (start.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return start.replace(year=start.year + 1)


def partition_name(tier: TierSpec, start: dt.date) -> str:
    return f"{tier.table}_p{start:%Y%m%d}"


def existing_partitions(cursor: Any, table: str) -> dict[str, tuple[dt.datetime, dt.datetime] | None]:
    """Partition name -> (from, to) bounds of every partition of ``table`` (None for a DEFAULT one)."""
    cursor.execute(
        """
        SELECT c.relname, pg_get_expr(c.relpartbound, c.oid)
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = %s::regclass
        """,
        [table],
    )
    out: dict[str, tuple[dt.datetime, dt.datetime] | None] = {}
    for name, bound in cursor.fetchall():
        out[name] = _parse_bound(bound)
    return out


def _parse_bound(bound: str) -> tuple[dt.datetime, dt.datetime] | None:
    """``FOR VALUES FROM ('2026-01-01 00:00:00+00') TO ('2026-01-02 00:00:00+00')`` -> datetimes."""
    if "FROM (" not in bound:
        return None
    lo = bound.split("FROM ('", 1)[1].split("'", 1)[0]
    hi = bound.split("TO ('", 1)[1].split("'", 1)[0]
    return _parse_ts(lo), _parse_ts(hi)


def _parse_ts(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text.replace(" ", "T"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def ensure_range(tier: TierSpec, start: dt.datetime, end: dt.datetime, connection: Any = None) -> int:
    """Create the partitions of ``tier`` covering [start, end); returns how many were created.
    No-op on TimescaleDB, which creates chunks on insert."""
    connection = connection or default_connection
    if not is_partitioned(connection):
        return 0
    created = 0
    with connection.cursor() as cursor:
        have = set(existing_partitions(cursor, tier.table))
        day = partition_start(tier, start.astimezone(dt.UTC).date())
        last_day = end.astimezone(dt.UTC).date()
        while day <= last_day and dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC) < end:
            nxt = partition_end(tier, day)
            name = partition_name(tier, day)
            if name not in have:
                ddl.create_partition(cursor, tier.table, name, f"{day.isoformat()} 00:00:00+00",
                                     f"{nxt.isoformat()} 00:00:00+00")
                created += 1
            day = nxt
    return created


# -- TimescaleDB compression of raw chunks -----------------------------------------------------------------

def enable_raw_compression(connection: Any = None) -> bool:
    """On TimescaleDB, declare raw chunks compressible, segmented by series (every read filters by
    series, so a segment decompresses only the series asked for) and ordered by time; the
    ``metrics.compress_chunks`` job compresses chunks older than FIBERSTACK_COMPRESS_AFTER_DAYS.
    Returns False (and does nothing) on plain PostgreSQL."""
    connection = connection or default_connection
    if is_partitioned(connection):
        return False
    with connection.cursor() as cursor:
        _compress_by_series(cursor, raw_storage.TABLE, "time")
    return True


def _compress_by_series(cursor: Any, table: str, time_column: str) -> None:
    """Declare a hypertable's chunks compressible: one segment per series, newest first inside it (what
    every reader filters and orders by)."""
    cursor.execute(f"ALTER TABLE {table} SET (timescaledb.compress, timescaledb.compress_segmentby = 'series_id', "
                   f"timescaledb.compress_orderby = '{time_column} DESC')")


def _decompress_all(cursor: Any, table: str) -> None:
    """Undo ``_compress_by_series``: decompress every chunk, then turn compression off."""
    cursor.execute("SELECT decompress_chunk(c, if_compressed => true) FROM show_chunks(%s) c", [table])
    cursor.execute(f"ALTER TABLE {table} SET (timescaledb.compress = false)")


def disable_raw_compression(connection: Any = None) -> None:
    connection = connection or default_connection
    if is_partitioned(connection):
        return
    with connection.cursor() as cursor:
        _decompress_all(cursor, raw_storage.TABLE)


# -- TimescaleDB compression of rollup chunks --------------------------------------------------------------

def enable_rollup_compression(connection: Any = None) -> bool:
    """On TimescaleDB, declare every tier's chunks compressible like raw ones: segmented by series, ordered
    by bucket (migration 0008; ``retention.compress_rollup_chunks`` compresses closed chunks). Plain
    PostgreSQL compresses closed partitions itself (``rollups.compressed``): returns False there."""
    connection = connection or default_connection
    if is_partitioned(connection):
        return False
    with connection.cursor() as cursor:
        for tier in TIERS:
            _compress_by_series(cursor, tier.table, "bucket")
    return True


def disable_rollup_compression(connection: Any = None) -> None:
    connection = connection or default_connection
    if is_partitioned(connection):
        return
    with connection.cursor() as cursor:
        for tier in TIERS:
            _decompress_all(cursor, tier.table)
