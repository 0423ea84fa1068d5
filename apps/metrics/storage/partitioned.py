"""Raw samples in a natively RANGE-partitioned table, one partition per UTC day.

Partitions are created ahead (migration: today-1 ... today+3; beat task ``metrics.ensure_partitions``
keeps ``FIBERSTACK_PARTITIONS_AHEAD`` days ahead). A DEFAULT partition catches writes for a day that has
no partition yet (late or back-dated data, a stopped beat), so an insert never fails for lack of a
partition; ``ensure_partitions`` then moves those rows into proper daily partitions. Retention drops whole
partitions (never row-by-row DELETE)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from apps.metrics.storage import ddl
from apps.metrics.storage.common import TABLE, create_raw_index, create_raw_table, drop_raw_table

NAME = "partitioned"
DEFAULT_PARTITION = f"{TABLE}_default"
# Of rows repeating a (series, time), the last stored (apps/metrics/storage/unique.py). They share a
# partition (one day), so their ctids are comparable.
KEEP_OF_DUPLICATES = "(array_agg(value ORDER BY ctid DESC))[1]"


def partition_name(day: dt.date) -> str:
    return f"{TABLE}_p{day:%Y%m%d}"


def install(cursor: Any, today: dt.date) -> None:
    """Create the parent table, its index, the DEFAULT partition and today-1 ... today+3."""
    create_raw_table(cursor, partition_clause="PARTITION BY RANGE (time)")
    create_raw_index(cursor)
    cursor.execute(f"CREATE TABLE {DEFAULT_PARTITION} PARTITION OF {TABLE} DEFAULT")
    for offset in range(-1, 4):
        _create_day(cursor, today + dt.timedelta(days=offset))


def uninstall(cursor: Any) -> None:
    drop_raw_table(cursor)


def existing_days(cursor: Any) -> set[dt.date]:
    """Days that have their own partition (parsed from the partition names, which this module owns)."""
    cursor.execute(
        """
        SELECT c.relname FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = %s::regclass
        """,
        [TABLE],
    )
    days = set()
    prefix = f"{TABLE}_p"
    for (relname,) in cursor.fetchall():
        if relname.startswith(prefix):
            days.add(dt.datetime.strptime(relname[len(prefix):], "%Y%m%d").date())
    return days


def _bounds(day: dt.date) -> tuple[str, str]:
    return f"{day.isoformat()} 00:00:00+00", f"{(day + dt.timedelta(days=1)).isoformat()} 00:00:00+00"


def _create_day(cursor: Any, day: dt.date) -> None:
    ddl.create_partition(cursor, TABLE, partition_name(day), *_bounds(day))


def ensure_partitions(cursor: Any, today: dt.date, days_ahead: int) -> dict[str, int]:
    """Create missing daily partitions (today-1 ... today+days_ahead, plus every day that has rows in
    the DEFAULT partition) and move DEFAULT's rows into them. Idempotent; run under the advisory lock
    ``metrics.ensure_partitions`` by the beat task.

    A day whose rows sit in DEFAULT cannot simply be created (PostgreSQL refuses a new partition that
    DEFAULT has rows for), so that day is built detached, filled from DEFAULT and then attached. The DDL runs
    in the owner's functions (``ddl``): the app role that calls this owns no table."""
    have = existing_days(cursor)
    wanted = {today + dt.timedelta(days=offset) for offset in range(-1, days_ahead + 1)}
    cursor.execute(f"SELECT DISTINCT (time AT TIME ZONE 'UTC')::date FROM {DEFAULT_PARTITION}")  # noqa: S608
    stray = {row[0] for row in cursor.fetchall()}
    created = moved = 0
    for day in sorted((wanted | stray) - have):
        if day not in stray:
            _create_day(cursor, day)
            created += 1
            continue
        moved += ddl.fill_partition_from_default(cursor, TABLE, partition_name(day), *_bounds(day))
        created += 1
    return {"created": created, "moved": moved}
