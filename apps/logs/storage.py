"""The two time-partitioned tables of this app, ``logs_entry`` and ``logs_event``, in plain SQL.

They are stored exactly like the metrics rollups (one partition manager, no copy of it): natively
RANGE-partitioned by day on plain PostgreSQL, hypertables with 1-day chunks on TimescaleDB, following the
backend the raw samples table chose (``apps.metrics.storage.backend_name``). Partitions are created
through ``apps.metrics.rollups.storage.ensure_range`` and dropped through
``apps.metrics.retention.drop_partitions_before``.

No DEFAULT partition: ingest only accepts times inside [now - FIBERSTACK_LOGS_MAX_PAST_S, now +
FIBERSTACK_INGEST_MAX_FUTURE_S] and makes sure the days of a batch have partitions before writing
(``ensure_days``, cached per process, so it costs one catalogue read per day and process).

Full text: a generated ``search`` tsvector column (``simple`` configuration: log lines are identifiers,
codes and paths, which stemming and stop words would mangle) with a GIN index. No foreign keys: a
TRUNCATE of organizations (test flushes) or a host deletion must not touch log partitions."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db import connection as default_connection

from apps.metrics import retention as metrics_retention
from apps.metrics import storage as raw_storage
from apps.metrics.rollups import storage as partitions


@dataclass(frozen=True, slots=True)
class TableSpec:
    """What ``ensure_range`` needs of a table: its name and partition width (duck-typed TierSpec)."""

    table: str
    partition: str = "day"


ENTRIES = TableSpec("logs_entry")
EVENTS = TableSpec("logs_event")
TABLES = (ENTRIES, EVENTS)

ENTRY_COLUMNS = ("time", "organization_id", "host_id", "host", "service", "level", "program", "message",
                 "request_id", "trace_id", "exception_type", "exception_message", "exception_stack", "context")
EVENT_COLUMNS = ("time", "organization_id", "host_id", "host", "kind", "level", "title", "message", "source",
                 "context")

_ENTRY_SQL = """
CREATE TABLE logs_entry (
    time timestamptz NOT NULL,
    id bigserial NOT NULL,
    organization_id integer NOT NULL,
    host_id integer,
    host text NOT NULL DEFAULT '',
    service text NOT NULL DEFAULT '',
    level text NOT NULL DEFAULT 'info',
    program text NOT NULL DEFAULT '',
    message text NOT NULL DEFAULT '',
    request_id text NOT NULL DEFAULT '',
    trace_id text NOT NULL DEFAULT '',
    exception_type text NOT NULL DEFAULT '',
    exception_message text NOT NULL DEFAULT '',
    exception_stack text NOT NULL DEFAULT '',
    context jsonb NOT NULL DEFAULT '{}',
    search tsvector GENERATED ALWAYS AS (
        to_tsvector('simple', message || ' ' || program || ' ' || service || ' ' || exception_type || ' '
                    || exception_message)
    ) STORED
)"""

_EVENT_SQL = """
CREATE TABLE logs_event (
    time timestamptz NOT NULL,
    id bigserial NOT NULL,
    organization_id integer NOT NULL,
    host_id integer,
    host text NOT NULL DEFAULT '',
    kind text NOT NULL,
    level text NOT NULL DEFAULT 'info',
    title text NOT NULL DEFAULT '',
    message text NOT NULL DEFAULT '',
    source text NOT NULL DEFAULT '',
    context jsonb NOT NULL DEFAULT '{}'
)"""

_INDEXES = (
    # The search API and page: one organization, newest first, cursor on (time, id).
    "CREATE INDEX logs_entry_org_time ON logs_entry (organization_id, time DESC, id DESC)",
    # The host filter of the search API and the host detail page.
    "CREATE INDEX logs_entry_org_host_time ON logs_entry (organization_id, host, time DESC)",
    # Full-text search (q=): websearch_to_tsquery against the generated column.
    "CREATE INDEX logs_entry_search ON logs_entry USING gin (search)",
    # The events API and a host's detail page.
    "CREATE INDEX logs_event_org_time ON logs_event (organization_id, time DESC, id DESC)",
    "CREATE INDEX logs_event_org_host_time ON logs_event (organization_id, host_id, time DESC)",
)

_known_days: dict[str, set[dt.date]] = {}


def is_timescale(connection: Any = None) -> bool:
    return raw_storage.backend_name(connection or default_connection) == "timescaledb"


def install(connection: Any = None, today: dt.date | None = None) -> None:
    """Create both tables and their indexes with the raw samples' backend (migration 0001)."""
    connection = connection or default_connection
    timescale = is_timescale(connection)
    with connection.cursor() as cursor:
        for spec, sql in ((ENTRIES, _ENTRY_SQL), (EVENTS, _EVENT_SQL)):
            cursor.execute(sql + ("" if timescale else " PARTITION BY RANGE (time)"))
            if timescale:
                cursor.execute("SELECT create_hypertable(%s, 'time', chunk_time_interval => INTERVAL '1 day', "
                               "create_default_indexes => false)", [spec.table])
        for statement in _INDEXES:
            cursor.execute(statement)
    today = today or dt.datetime.now(dt.UTC).date()
    start = dt.datetime.combine(today, dt.time(), tzinfo=dt.UTC)
    ensure_range(start - dt.timedelta(days=8), start + dt.timedelta(days=4), connection=connection)


def uninstall(connection: Any = None) -> None:
    connection = connection or default_connection
    with connection.cursor() as cursor:
        for spec in TABLES:
            cursor.execute(f"DROP TABLE IF EXISTS {spec.table} CASCADE")
    _known_days.clear()


def ensure_range(start: dt.datetime, end: dt.datetime, connection: Any = None) -> int:
    """Daily partitions of both tables covering [start, end); no-op on TimescaleDB."""
    return sum(partitions.ensure_range(spec, start, end, connection=connection)  # type: ignore[arg-type]
               for spec in TABLES)


def ensure_days(spec: TableSpec, days: set[dt.date]) -> None:
    """Make sure each of ``days`` has a partition of ``spec`` before a write (inside the caller's
    transaction); only days this process has not seen yet cost a catalogue read."""
    known = _known_days.setdefault(spec.table, set())
    missing = days - known
    if not missing:
        return
    if not is_timescale():
        lo, hi = min(missing), max(missing)
        partitions.ensure_range(spec, dt.datetime.combine(lo, dt.time(), tzinfo=dt.UTC),  # type: ignore[arg-type]
                                dt.datetime.combine(hi + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC))
    known.update(missing)


def drop_before(spec: TableSpec, cutoff: dt.datetime) -> list[str]:
    """Drop the partitions (chunks) of ``spec`` that hold only rows before ``cutoff``."""
    dropped = metrics_retention.drop_partitions_before(spec.table, cutoff)
    _known_days.pop(spec.table, None)
    return dropped
