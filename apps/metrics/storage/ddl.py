"""The DDL that metrics storage does at run time, done by the owner role on the app role's behalf.

The application connects as a role that owns nothing (docs/database-roles.md), so it may not create,
attach or drop partitions, nor compress or drop TimescaleDB chunks. These SECURITY DEFINER functions,
owned by the role that runs the migrations, do exactly those operations and nothing else: each checks
that the table is the caller's owner's own, that a partition is named ``<table>_p<YYYYMMDD>`` (the one
naming scheme of raw and rollup partitions) and, for a drop, that it is a partition of that table and
not its DEFAULT. Every caller -- migrations, beat jobs, tests -- goes through them, so the path the app
role takes is the path everything takes.

The functions are created by ``install`` from the raw-storage install (migration 0002), so they exist
before the first partition, and by migration 0006 on databases installed before they existed."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

Bound = str | dt.datetime  # a partition bound: a timestamptz literal or an aware datetime

FUNCTIONS = (
    "fiberstack_partition_guard(regclass, text)",
    "fiberstack_create_partition(regclass, text, timestamptz, timestamptz)",
    "fiberstack_fill_partition_from_default(regclass, text, timestamptz, timestamptz)",
    "fiberstack_drop_partition(regclass, text)",
    "fiberstack_drop_chunks(regclass, timestamptz)",
    "fiberstack_compress_chunks(regclass, timestamptz)",
)

_SQL = r"""
CREATE OR REPLACE FUNCTION fiberstack_partition_guard(parent regclass, part text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner
                   WHERE c.oid = parent AND r.rolname = current_user) THEN
        RAISE EXCEPTION '% is not owned by %', parent, current_user USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF part IS NOT NULL AND part !~ ('^' || (SELECT relname FROM pg_class WHERE oid = parent) || '_p[0-9]{8}$') THEN
        RAISE EXCEPTION '% is not a partition name of %', part, parent USING ERRCODE = 'invalid_name';
    END IF;
END;
$$;

CREATE OR REPLACE FUNCTION fiberstack_create_partition(parent regclass, part text, lo timestamptz, hi timestamptz)
RETURNS boolean LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    PERFORM fiberstack_partition_guard(parent, part);
    IF to_regclass(quote_ident(part)) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF %s FOR VALUES FROM (%L) TO (%L)', part, parent, lo, hi);
    RETURN true;
END;
$$;

-- A day whose rows sit in the DEFAULT partition cannot simply be created (PostgreSQL refuses a partition
-- that DEFAULT has rows for): build it detached, move DEFAULT's rows of the range into it, attach it.
CREATE OR REPLACE FUNCTION fiberstack_fill_partition_from_default(parent regclass, part text, lo timestamptz,
                                                                  hi timestamptz)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    default_part regclass;
    key_column name;
    moved bigint;
BEGIN
    PERFORM fiberstack_partition_guard(parent, part);
    SELECT p.partdefid::regclass, a.attname INTO default_part, key_column
    FROM pg_partitioned_table p JOIN pg_attribute a ON a.attrelid = p.partrelid AND a.attnum = p.partattrs[0]
    WHERE p.partrelid = parent AND p.partdefid <> 0;
    IF default_part IS NULL THEN
        RAISE EXCEPTION '% has no DEFAULT partition', parent;
    END IF;
    -- Block concurrent writes into DEFAULT while its rows for this range move (a few seconds at most).
    EXECUTE format('LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE', default_part);
    EXECUTE format('CREATE TABLE %I (LIKE %s INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part, parent);
    EXECUTE format('WITH moved AS (DELETE FROM %s WHERE %I >= %L AND %I < %L RETURNING *) '
                   'INSERT INTO %I SELECT * FROM moved', default_part, key_column, lo, key_column, hi, part);
    GET DIAGNOSTICS moved = ROW_COUNT;
    -- The CHECK lets ATTACH skip scanning the new partition; it is redundant afterwards.
    EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I CHECK (%I >= %L AND %I < %L)',
                   part, part || '_bounds', key_column, lo, key_column, hi);
    EXECUTE format('ALTER TABLE %s ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', parent, part, lo, hi);
    EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I', part, part || '_bounds');
    RETURN moved;
END;
$$;

CREATE OR REPLACE FUNCTION fiberstack_drop_partition(parent regclass, part text)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    PERFORM fiberstack_partition_guard(parent, part);
    IF NOT EXISTS (SELECT 1 FROM pg_inherits
                   WHERE inhparent = parent AND inhrelid = to_regclass(quote_ident(part))) THEN
        RAISE EXCEPTION '% is not a partition of %', part, parent;
    END IF;
    EXECUTE format('ALTER TABLE %s DETACH PARTITION %I', parent, part);
    EXECUTE format('DROP TABLE %I', part);
END;
$$;

CREATE OR REPLACE FUNCTION fiberstack_drop_chunks(hypertable regclass, cutoff timestamptz)
RETURNS SETOF text LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    PERFORM fiberstack_partition_guard(hypertable, NULL);
    RETURN QUERY SELECT c::text FROM drop_chunks(hypertable, older_than => cutoff) AS c;
END;
$$;

CREATE OR REPLACE FUNCTION fiberstack_compress_chunks(hypertable regclass, cutoff timestamptz)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    done integer;
BEGIN
    PERFORM fiberstack_partition_guard(hypertable, NULL);
    SELECT count(compress_chunk(c, if_not_compressed => true)) INTO done
    FROM show_chunks(hypertable, older_than => cutoff) AS c;
    RETURN done;
END;
$$;
"""


def install(cursor: Any) -> None:
    """Create (or replace) the functions; only the owner role (and roles it grants to) may call them.
    The lookup path is pinned to this schema with pg_temp last, so a caller's temporary objects can never
    stand in for the tables these functions touch."""
    cursor.execute(_SQL)
    cursor.execute("SELECT current_schema()")
    schema = cursor.fetchone()[0]
    for signature in FUNCTIONS:
        cursor.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
        cursor.execute(f'ALTER FUNCTION {signature} SET search_path = "{schema}", pg_temp')


def uninstall(cursor: Any) -> None:
    for signature in FUNCTIONS:
        cursor.execute(f"DROP FUNCTION IF EXISTS {signature}")


def create_partition(cursor: Any, parent: str, name: str, lo: Bound, hi: Bound) -> bool:
    """Create partition ``name`` of ``parent`` for [lo, hi); False when it already existed."""
    cursor.execute("SELECT fiberstack_create_partition(%s::regclass, %s, %s::timestamptz, %s::timestamptz)",
                   [parent, name, lo, hi])
    return bool(cursor.fetchone()[0])


def fill_partition_from_default(cursor: Any, parent: str, name: str, lo: Bound, hi: Bound) -> int:
    """Create partition ``name`` from the rows DEFAULT holds for [lo, hi); returns how many moved."""
    cursor.execute(
        "SELECT fiberstack_fill_partition_from_default(%s::regclass, %s, %s::timestamptz, %s::timestamptz)",
        [parent, name, lo, hi],
    )
    return int(cursor.fetchone()[0])


def drop_partition(cursor: Any, parent: str, name: str) -> None:
    """Detach and drop partition ``name`` of ``parent`` (never its DEFAULT partition)."""
    cursor.execute("SELECT fiberstack_drop_partition(%s::regclass, %s)", [parent, name])


# How long compression waits for the readers in flight when it needs the parent table to itself (dropping a
# compressed partition, committing a compressed range) before giving that work up until its next run: new
# readers queue behind the wait, so it bounds how long they can stall.
READERS_WAIT = "3s"
LOCK_NOT_AVAILABLE = "55P03"


@contextmanager
def waiting_for_readers_at_most(cursor: Any) -> Iterator[None]:
    """The statements inside wait at most ``READERS_WAIT`` for a lock (a transaction-local ``lock_timeout``,
    restored afterwards); past it they raise ``lock_not_available`` (``LOCK_NOT_AVAILABLE``), which aborts the
    caller's transaction: the caller reports the work as busy and leaves it for the next run."""
    cursor.execute("SELECT current_setting('lock_timeout')")
    previous = cursor.fetchone()[0]
    cursor.execute("SELECT set_config('lock_timeout', %s, true)", [READERS_WAIT])
    yield
    cursor.execute("SELECT set_config('lock_timeout', %s, true)", [previous])


def drop_chunks(cursor: Any, hypertable: str, cutoff: dt.datetime) -> list[str]:
    """TimescaleDB: drop the chunks of ``hypertable`` entirely before ``cutoff``; returns their names."""
    cursor.execute("SELECT fiberstack_drop_chunks(%s::regclass, %s::timestamptz)", [hypertable, cutoff])
    return [str(row[0]) for row in cursor.fetchall()]


def compress_chunks(cursor: Any, hypertable: str, cutoff: dt.datetime) -> int:
    """TimescaleDB: compress the chunks of ``hypertable`` entirely before ``cutoff``; returns how many."""
    cursor.execute("SELECT fiberstack_compress_chunks(%s::regclass, %s::timestamptz)", [hypertable, cutoff])
    return int(cursor.fetchone()[0])
