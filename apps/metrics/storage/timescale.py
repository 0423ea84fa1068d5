"""Raw samples in a TimescaleDB hypertable with 1-day chunks.

Written in plain SQL rather than through django-timescaledb: that package's model field needs the
extension at import/migrate time (it fails on plain PostgreSQL), its hypertable conversion drops the
table's primary key, and its ``time_bucket`` manager breaks on Django 5.2. The table here has no
primary key at all (samples are addressed by (series_id, time) through the unique index), and chunk creation
is TimescaleDB's own business, so ``ensure_partitions`` has nothing to do."""

from __future__ import annotations

import datetime as dt
from typing import Any

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
