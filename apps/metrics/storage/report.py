"""What each storage tier holds and what it costs on disk: the one implementation behind
``manage.py storage_report`` and the admin's storage page.

Generic over relations: a line names a table, the column its time is in and, where rows stand for several
raw values (rollup buckets, compressed chunks), the column counting them. Sizes come from the catalogue
(table + indexes + TOAST, summed over every partition of a partitioned table; ``hypertable_detailed_size``
and the chunk compression stats on TimescaleDB), so a tier whose columns change is still measured right; a
"values" column that no longer exists just leaves its bytes per raw value blank. Other apps' tables (logs,
events) join through the setting ``FIBERSTACK_STORAGE_REPORT_TABLES`` (label, table, time column), so this
floor never names a higher app.

Counts are exact (``count(*)``, ``min``/``max`` of the time column, one scan per tier): on a large
installation a report takes as long as reading every tier once."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import connection as default_connection

from apps.metrics.rollups import compressed as rollup_compressed
from apps.metrics.rollups.tiers import TIERS
from apps.metrics.storage.common import TABLE
from apps.metrics.storage.compressed import COMPRESSED_TABLE


@dataclass(frozen=True, slots=True)
class Source:
    """One line of the report: a table and how to read what it holds."""

    label: str
    table: str
    time_column: str
    newest_column: str | None = None  # when the newest instant is another column (a chunk's last_time)
    values_column: str | None = None  # raw values a row stands for (None: one per row)
    values_known: bool = True  # False: the rows do not say how many raw values they stand for ("-")


@dataclass(frozen=True, slots=True)
class Bytes:
    table: int = 0
    indexes: int = 0
    toast: int = 0

    @property
    def total(self) -> int:
        return self.table + self.indexes + self.toast


@dataclass(frozen=True, slots=True)
class TierUsage:
    """A line of the report. ``values`` is the raw values represented (None when the table cannot say);
    ``before_bytes`` is what compressed data took as rows, when the storage knows it (TimescaleDB)."""

    label: str
    table: str
    rows: int
    parts: int  # partitions or chunks holding the rows (1 for a plain table)
    size: Bytes
    values: int | None
    oldest: dt.datetime | None
    newest: dt.datetime | None
    before_bytes: int | None = None

    @property
    def bytes_per_value(self) -> float | None:
        return self.size.total / self.values if self.values else None


@dataclass(frozen=True, slots=True)
class StorageReport:
    """Every tier, raw first, then the other tables; ``compression_ratio`` compares a line with what its
    raw values take as raw rows."""

    backend: str
    lines: list[TierUsage] = field(default_factory=list)

    @property
    def raw_row_bytes_per_value(self) -> float | None:
        raw = self.lines[0] if self.lines else None
        return raw.bytes_per_value if raw is not None and raw.rows else None

    def compression_ratio(self, line: TierUsage) -> float | None:
        if line.before_bytes and line.size.total:
            return line.before_bytes / line.size.total
        baseline = self.raw_row_bytes_per_value
        per_value = line.bytes_per_value
        if baseline is None or not per_value:
            return None
        return baseline / per_value

    @property
    def total_bytes(self) -> int:
        return sum(line.size.total for line in self.lines)


def metric_sources() -> list[Source]:
    """Raw rows, compressed raw chunks (plain PostgreSQL), then the rollup tiers in order, each followed by
    its compressed closed partitions (plain PostgreSQL; their raw-value counts live inside the blobs)."""
    return [
        Source("raw rows", TABLE, "time"),
        Source("raw compressed chunks", COMPRESSED_TABLE, "first_time", "last_time", "count"),
        *(source for tier in TIERS for source in (
            Source(tier.name, tier.table, "bucket", values_column="count"),
            Source(f"{tier.name} compressed chunks", rollup_compressed.table(tier), "first_bucket", "last_bucket",
                   values_known=False))),
    ]


def _pcodec_chunk_tables() -> set[str]:
    """Our own compressed-chunk tables (plain PostgreSQL's compression; unused on TimescaleDB)."""
    return {COMPRESSED_TABLE, *(rollup_compressed.table(tier) for tier in TIERS)}


def extra_sources() -> list[Source]:
    return [Source(label, table, column)
            for label, table, column in getattr(settings, "FIBERSTACK_STORAGE_REPORT_TABLES", ())]


def _scalar(cursor: Any, sql: str, params: list[Any] | None = None) -> Any:
    cursor.execute(sql, params or [])
    row = cursor.fetchone()
    return row[0] if row else None


def _exists(cursor: Any, table: str) -> bool:
    return _scalar(cursor, "SELECT to_regclass(%s) IS NOT NULL", [table])


def _has_column(cursor: Any, table: str, column: str) -> bool:
    return bool(_scalar(cursor, "SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = %s::regclass "
                                "AND attname = %s AND attnum > 0 AND NOT attisdropped)", [table, column]))


def _is_hypertable(cursor: Any, table: str) -> bool:
    if not _scalar(cursor, "SELECT to_regclass('timescaledb_information.hypertables') IS NOT NULL"):
        return False
    return bool(_scalar(cursor, "SELECT EXISTS (SELECT 1 FROM timescaledb_information.hypertables "
                                "WHERE hypertable_schema = current_schema() AND hypertable_name = %s)", [table]))


def _plain_size(cursor: Any, table: str) -> tuple[Bytes, int]:
    """Table, index and TOAST bytes over the relation and all its partitions; how many leaves hold data."""
    cursor.execute(
        """
        SELECT coalesce(sum(pg_relation_size(c.oid, 'main') + pg_relation_size(c.oid, 'fsm')
                            + pg_relation_size(c.oid, 'vm')), 0),
               coalesce(sum(pg_indexes_size(c.oid)), 0),
               coalesce(sum(CASE WHEN c.reltoastrelid <> 0 THEN pg_total_relation_size(c.reltoastrelid) END), 0),
               count(*) FILTER (WHERE t.isleaf)
        FROM (SELECT relid, isleaf FROM pg_partition_tree(%(t)s::regclass)
              UNION ALL  -- a plain table is no partition tree: itself
              SELECT %(t)s::regclass, true WHERE NOT EXISTS (SELECT FROM pg_partition_tree(%(t)s::regclass))
        ) AS t JOIN pg_class AS c ON c.oid = t.relid
        """,
        {"t": table},
    )
    heap, indexes, toast, leaves = cursor.fetchone()
    return Bytes(int(heap), int(indexes), int(toast)), int(leaves)


def _scan(cursor: Any, source: Source, where: str = "", params: list[Any] | None = None
          ) -> tuple[int, int | None, dt.datetime | None, dt.datetime | None]:
    """(rows, raw values, oldest, newest) in one pass over the table (or the part ``where`` selects)."""
    if not source.values_known:
        values = "NULL"
    elif not source.values_column:
        values = "count(*)"
    elif _has_column(cursor, source.table, source.values_column):
        values = f"coalesce(sum({source.values_column}), 0)::bigint"
    else:
        values = "NULL"
    newest = source.newest_column or source.time_column
    cursor.execute(
        f"SELECT count(*), {values}, min({source.time_column}), max({newest}) FROM {source.table} {where}",  # noqa: S608
        params or [],
    )
    rows, represented, oldest, last = cursor.fetchone()
    return int(rows), None if represented is None else int(represented), oldest, last


def _line(cursor: Any, source: Source) -> TierUsage:
    if _is_hypertable(cursor, source.table):
        cursor.execute("SELECT table_bytes, index_bytes, toast_bytes FROM hypertable_detailed_size(%s)",
                       [source.table])
        heap, indexes, toast = (int(v or 0) for v in cursor.fetchone())
        parts = _scalar(cursor, "SELECT count(*) FROM show_chunks(%s)", [source.table])
        size = Bytes(heap, indexes, toast)
    else:
        size, parts = _plain_size(cursor, source.table)
    rows, values, oldest, newest = _scan(cursor, source)
    return TierUsage(source.label, source.table, rows, int(parts), size, values, oldest, newest)


def _timescale_raw(cursor: Any, source: Source) -> list[TierUsage]:
    """A raw hypertable as two lines: its row chunks and its natively compressed chunks."""
    cursor.execute(
        "SELECT is_compressed, array_agg(format('%%I.%%I', chunk_schema, chunk_name)) "
        "FROM timescaledb_information.chunks WHERE hypertable_schema = current_schema() AND hypertable_name = %s "
        "GROUP BY is_compressed",
        [source.table],
    )
    chunks = {bool(done): list(names) for done, names in cursor.fetchall()}
    cursor.execute(
        "SELECT coalesce(sum(d.table_bytes), 0), coalesce(sum(d.index_bytes), 0), coalesce(sum(d.toast_bytes), 0) "
        "FROM chunks_detailed_size(%s) AS d WHERE format('%%I.%%I', d.chunk_schema, d.chunk_name) = ANY(%s)",
        [source.table, chunks.get(False, [])],
    )
    rows_size = Bytes(*(int(v) for v in cursor.fetchone()))
    cursor.execute(
        "SELECT coalesce(sum(after_compression_table_bytes), 0), coalesce(sum(after_compression_index_bytes), 0), "
        "coalesce(sum(after_compression_toast_bytes), 0), coalesce(sum(before_compression_total_bytes), 0) "
        "FROM chunk_compression_stats(%s) WHERE compression_status = 'Compressed'",
        [source.table],
    )
    heap, indexes, toast, before = (int(v) for v in cursor.fetchone())
    lines = []
    for done, label, size in ((False, source.label, rows_size),
                              (True, "raw compressed chunks", Bytes(heap, indexes, toast))):
        names = chunks.get(done, [])
        rows, values, oldest, newest = _scan(cursor, source, "WHERE tableoid = ANY(%s::regclass[])", [names])
        lines.append(TierUsage(label, source.table, rows, len(names), size, values, oldest, newest,
                               before_bytes=before if done else None))
    return lines


def build_report(connection: Any = None) -> StorageReport:
    """Measure every tier that exists in this database (a table not migrated yet is left out)."""
    connection = connection or default_connection
    lines: list[TierUsage] = []
    with connection.cursor() as cursor:
        timescale = _is_hypertable(cursor, TABLE)
        for source in [*metric_sources(), *extra_sources()]:
            if not _exists(cursor, source.table):
                continue
            if source.table == TABLE and timescale:
                lines.extend(_timescale_raw(cursor, source))
            elif timescale and source.table in _pcodec_chunk_tables():
                continue  # stay empty there: TimescaleDB compresses natively (raw's native chunks are above)
            else:
                lines.append(_line(cursor, source))
    return StorageReport(backend="timescaledb" if timescale else "partitioned", lines=lines)


COLUMNS = ("tier", "table", "rows", "parts", "bytes", "table+toast", "indexes", "B/raw value", "ratio",
           "oldest", "newest")


def _number(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _moment(value: dt.datetime | None) -> str:
    return "-" if value is None else value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def display_rows(report: StorageReport) -> list[list[str]]:
    """The cells of every line, formatted once for the command and the admin page alike."""
    out = []
    for line in report.lines:
        ratio = report.compression_ratio(line)
        out.append([
            line.label, line.table, f"{line.rows:,}", f"{line.parts:,}", f"{line.size.total:,}",
            f"{line.size.table + line.size.toast:,}", f"{line.size.indexes:,}", _number(line.bytes_per_value, 3),
            "-" if ratio is None else f"{ratio:,.1f}x", _moment(line.oldest), _moment(line.newest),
        ])
    return out
