"""Which database a cached id belongs to: the scope every Redis (and in-process) cache of database ids
is keyed by.

The ingest hot path caches host name -> Host id and series key -> Series id in Redis, which outlives the
database: re-create or restore the database while Redis keeps its keys, and cached ids point at rows
that no longer exist or, worse, at other rows that got the same id. Samples would then be stored under
the wrong series, silently. So every such key carries

* the **database identity** (:func:`epoch`): a random UUID written into ``hosts_cache_epoch`` by migration
  ``hosts.0002`` (a new database gets a new one, even on another server with the same name and OIDs)
  plus the database's OID (a dump restored into a freshly created database gets a new OID although the
  epoch row came with the dump);
* for caches keyed by organization, the organization's ``public_id`` (:func:`org_scope`): an organization
  deleted and created again with the same pk gets a new UUID.

A database restored in place (PITR, a file-level backup, ``pg_restore --clean`` into the same database)
keeps both, so after such a restore run ``manage.py flush_metrics_caches``: it rotates the epoch and
deletes the cached keys. Processes re-read the epoch every ``EPOCH_TTL`` seconds, so running web workers
stop using the old keys within that time without a restart.

The table lives in the hosts app because hosts is the lowest floor that caches database ids (metrics
sits above it and uses the same scope); it has no model: nothing but this module reads it.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from django.db import connection

TABLE = "hosts_cache_epoch"
EPOCH_TTL = 60.0

_lock = threading.Lock()
_cached: dict[str, tuple[str, float]] = {}


def _read(conn: Any) -> str:
    with conn.cursor() as cursor:
        cursor.execute(
            f"SELECT (SELECT replace(epoch::text, '-', '') FROM {TABLE} LIMIT 1), "  # noqa: S608 - our table
            "(SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        epoch, oid = cursor.fetchone()
    # 64 random bits are plenty to tell databases apart and keep the keys short.
    return f"{(epoch or 'none')[:16]}.{oid}"


def epoch(conn: Any = None) -> str:
    """This database's cache identity, e.g. ``"3f9c0a1b2c3d4e5f.16384"``; read from PostgreSQL at most
    once per ``EPOCH_TTL`` seconds per process and database alias."""
    conn = conn or connection
    alias = f"{conn.alias}:{conn.settings_dict.get('NAME')}"
    now = time.monotonic()
    hit = _cached.get(alias)
    if hit is not None and hit[1] > now:
        return hit[0]
    value = _read(conn)
    with _lock:
        _cached[alias] = (value, now + EPOCH_TTL)
    return value


def org_scope(organization: Any) -> str:
    """Scope of the caches keyed by organization: database identity plus the organization's public_id."""
    return f"{epoch()}:{organization.public_id.hex}"


def rotate(conn: Any = None) -> str:
    """Give this database a new epoch (after restoring a backup), forget the cached one; returns the new
    identity. Every key written under the old epoch is unreachable from then on."""
    conn = conn or connection
    with conn.cursor() as cursor:
        cursor.execute(f"UPDATE {TABLE} SET epoch = gen_random_uuid(), rotated_at = now()")  # noqa: S608
        if cursor.rowcount == 0:
            cursor.execute(f"INSERT INTO {TABLE} (epoch, rotated_at) VALUES (gen_random_uuid(), now())")  # noqa: S608
    forget()
    return epoch(conn)


def forget() -> None:
    """Drop the process's cached identity (tests that swap databases; ``rotate``)."""
    with _lock:
        _cached.clear()
