"""Raw samples in a TimescaleDB hypertable with 1-day chunks.

Written in plain SQL rather than through django-timescaledb: that package's model field needs the
extension at import/migrate time (it fails on plain PostgreSQL), its hypertable conversion drops the
table's primary key, and its ``time_bucket`` manager breaks on Django 5.2. The table here has no
primary key at all (samples are addressed by (series_id, time) through the unique index), and chunk creation
is TimescaleDB's own business, so ``ensure_partitions`` has nothing to do."""

from __future__ import annotations

import datetime as dt
from typing import Any

from apps.metrics.storage import ddl
from apps.metrics.storage.common import TABLE, create_raw_index, create_raw_table, drop_raw_table

NAME = "timescaledb"
# Of rows repeating a (series, time), the last read (apps/metrics/storage/unique.py): compressed chunks
# refuse ``ctid`` ("transparent decompression only supports tableoid system column").
KEEP_OF_DUPLICATES = "(array_agg(value))[count(*)]"


def install(cursor: Any, today: dt.date) -> None:
    create_raw_table(cursor)
    # create_default_indexes would add (time DESC); every read filters by series first instead.
    cursor.execute(
        "SELECT create_hypertable(%s, 'time', chunk_time_interval => INTERVAL '1 day', "
        "create_default_indexes => false)",
        [TABLE],
    )
    create_raw_index(cursor)


def uninstall(cursor: Any) -> None:
    drop_raw_table(cursor)


def ensure_partitions(cursor: Any, today: dt.date, days_ahead: int) -> dict[str, int]:
    """Chunks are created on insert by TimescaleDB; nothing to prepare."""
    return {"created": 0, "moved": 0}


def due_chunks(cursor: Any, cutoff: dt.datetime) -> list[tuple[str, dt.datetime, dt.datetime]]:
    """(chunk, range start, range end) of the raw chunks not compressed yet that end at or before
    ``cutoff``, oldest first: what ``compress_chunks`` would compress."""
    cursor.execute(
        "SELECT format('%%I.%%I', chunk_schema, chunk_name), range_start, range_end "
        "FROM timescaledb_information.chunks WHERE hypertable_schema = current_schema() "
        "AND hypertable_name = %s AND NOT is_compressed AND range_end <= %s ORDER BY range_start",
        [TABLE, cutoff],
    )
    return [(str(name), lo, hi) for name, lo, hi in cursor.fetchall()]


def compress_due(cursor: Any, cutoff: dt.datetime, limit: int | None = None) -> dict[dt.date, dict[str, int]]:
    """Compress raw chunks ending at or before ``cutoff`` (the oldest ``limit`` of them), natively, through
    the owner's function; per chunk (by its first day) the rows it held and its bytes before and after.
    Rows are counted first, because a compressed chunk no longer says how many it holds."""
    chunks = due_chunks(cursor, cutoff)[:limit]
    if not chunks:
        return {}
    rows = {}
    for name, _, _ in chunks:
        cursor.execute(f"SELECT count(*) FROM {name}")  # noqa: S608 - a chunk name from the catalogue
        rows[name] = int(cursor.fetchone()[0])
    ddl.compress_chunks(cursor, TABLE, chunks[-1][2])  # every due chunk up to the last one chosen
    cursor.execute(
        "SELECT format('%%I.%%I', chunk_schema, chunk_name), before_compression_total_bytes, "
        "after_compression_total_bytes FROM chunk_compression_stats(%s)",
        [TABLE],
    )
    sizes = {str(name): (int(before or 0), int(after or 0)) for name, before, after in cursor.fetchall()}
    return {
        lo.date(): {"rows": rows[name], "chunks": 1, "bytes_before": sizes.get(name, (0, 0))[0],
                    "bytes_after": sizes.get(name, (0, 0))[1]}
        for name, lo, _ in chunks
    }
