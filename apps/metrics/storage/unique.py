"""Making (series_id, time) unique on a raw table that was created without the key (migration 0004), and
undoing it. Rows written before the key may repeat a (series, time): the retried batches this key exists
to absorb. One of each is kept: on native partitions the last one stored (highest ``ctid``, exact for rows
never updated, which raw samples never were); TimescaleDB's compressed chunks expose no ``ctid``, so there
the last one read is kept (``KEEP_OF_DUPLICATES`` of each backend module)."""

from __future__ import annotations

from typing import Any

from django.db import connection as default_connection

from apps.metrics.storage import backend
from apps.metrics.storage.common import TABLE, create_raw_index, drop_raw_index

_DUPLICATES = "fs_sample_duplicates"


def remove_duplicates(cursor: Any, keep: str) -> int:
    """Leave one row per (series_id, time), the one the aggregate expression ``keep`` picks; returns the
    number of rows removed. Writes are blocked meanwhile (a row stored between this and the unique index
    could repeat a key again); reads are not."""
    cursor.execute(f"LOCK TABLE {TABLE} IN SHARE ROW EXCLUSIVE MODE")
    cursor.execute(
        f"""CREATE TEMPORARY TABLE {_DUPLICATES} ON COMMIT DROP AS
        SELECT series_id, time, {keep} AS value, count(*) AS copies
        FROM {TABLE} GROUP BY series_id, time HAVING count(*) > 1"""  # noqa: S608 - names are ours
    )
    cursor.execute(f"SELECT coalesce(sum(copies - 1), 0) FROM {_DUPLICATES}")  # noqa: S608
    removed = int(cursor.fetchone()[0])
    if removed:
        cursor.execute(
            f"DELETE FROM {TABLE} s USING {_DUPLICATES} d WHERE s.series_id = d.series_id AND s.time = d.time"  # noqa: S608
        )
        cursor.execute(
            f"INSERT INTO {TABLE} (time, series_id, value) SELECT time, series_id, value FROM {_DUPLICATES}"  # noqa: S608
        )
    cursor.execute(f"DROP TABLE {_DUPLICATES}")
    return removed


def make_unique(connection: Any = None) -> int:
    """Remove duplicate samples, then replace the read index by its unique form; returns rows removed."""
    connection = connection or default_connection
    with connection.cursor() as cursor:
        removed = remove_duplicates(cursor, backend(connection).KEEP_OF_DUPLICATES)
        drop_raw_index(cursor)
        create_raw_index(cursor, unique=True)
    return removed


def make_non_unique(connection: Any = None) -> None:
    """The read index as it was before migration 0004 (samples stay one per key until a repeat arrives)."""
    connection = connection or default_connection
    with connection.cursor() as cursor:
        drop_raw_index(cursor)
        create_raw_index(cursor, unique=False)
