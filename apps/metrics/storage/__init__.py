"""Raw sample storage: the one place that knows whether samples live in a TimescaleDB hypertable or in
a natively range-partitioned table. Everything above this package (ingest, queries, rollups) uses the
same table name and columns, ``copy_samples`` and ``ensure_partitions``, and never branches on the backend.

Which backend a database has is decided once, by migration 0002 (``install``), from the setting
``FIBERSTACK_TIMESCALEDB``: ``"auto"`` (default) uses TimescaleDB when ``CREATE EXTENSION IF NOT EXISTS
timescaledb`` succeeds, ``"on"`` requires it, ``"off"`` never tries. Afterwards ``backend_name()`` reads
the answer from the catalogue, so a process with different settings still sees the truth."""

from __future__ import annotations

import datetime as dt
import logging
from types import ModuleType
from typing import Any

from django.conf import settings
from django.db import connection as default_connection
from django.utils import timezone

from apps.metrics.storage import ddl, partitioned, timescale
from apps.metrics.storage.common import COPY_SQL, INDEX, TABLE, binary_copy_buffer
from apps.metrics.storage.write import copy_samples

__all__ = [
    "COPY_SQL",
    "INDEX",
    "TABLE",
    "backend",
    "backend_name",
    "binary_copy_buffer",
    "copy_samples",
    "ensure_partitions",
    "install",
    "uninstall",
]

logger = logging.getLogger(__name__)
BACKENDS: dict[str, ModuleType] = {timescale.NAME: timescale, partitioned.NAME: partitioned}
_detected: dict[str, str] = {}


def timescaledb_setting() -> str:
    value = str(getattr(settings, "FIBERSTACK_TIMESCALEDB", "auto")).lower()
    if value not in {"auto", "on", "off"}:
        raise ValueError(f"FIBERSTACK_TIMESCALEDB must be auto, on or off, not {value!r}")
    return value


def _try_timescaledb(cursor: Any, required: bool) -> bool:
    """Create the extension inside a savepoint, so a failure (not installed, not preloaded) leaves the
    migration's transaction usable for the partitioned fallback."""
    cursor.execute("SAVEPOINT fs_timescaledb")
    try:
        cursor.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    except Exception as exc:
        cursor.execute("ROLLBACK TO SAVEPOINT fs_timescaledb")
        if required:
            raise RuntimeError(f"FIBERSTACK_TIMESCALEDB=on but the extension is not usable: {exc}") from exc
        logger.info("TimescaleDB not available (%s); using native partitioning", exc)
        return False
    cursor.execute("RELEASE SAVEPOINT fs_timescaledb")
    return True


def install(connection: Any = None, today: dt.date | None = None) -> str:
    """Create the raw samples table with the backend the setting and the server allow; returns its name."""
    connection = connection or default_connection
    mode = timescaledb_setting()
    today = today or timezone.now().date()
    with connection.cursor() as cursor:
        ddl.install(cursor)  # first: every partition below is created through these functions
        use_timescale = mode != "off" and _try_timescaledb(cursor, required=mode == "on")
        chosen = timescale if use_timescale else partitioned
        chosen.install(cursor, today)
    _detected.clear()
    return chosen.NAME


def uninstall(connection: Any = None) -> None:
    connection = connection or default_connection
    with connection.cursor() as cursor:
        partitioned.uninstall(cursor)  # same DROP TABLE for both backends
        ddl.uninstall(cursor)
    _detected.clear()


def backend_name(connection: Any = None) -> str:
    """``"timescaledb"`` or ``"partitioned"``, read from the catalogue (cached per database alias)."""
    connection = connection or default_connection
    cache_key = f"{connection.alias}:{connection.settings_dict.get('NAME')}"
    name = _detected.get(cache_key)
    if name is None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT EXISTS (SELECT 1 FROM pg_partitioned_table WHERE partrelid = to_regclass(%s))",
                           [TABLE])
            name = partitioned.NAME if cursor.fetchone()[0] else timescale.NAME
        _detected[cache_key] = name
    return name


def backend(connection: Any = None) -> ModuleType:
    return BACKENDS[backend_name(connection)]


def ensure_partitions(days_ahead: int | None = None, today: dt.date | None = None,
                      connection: Any = None) -> dict[str, int]:
    """Make sure partitions exist ahead and DEFAULT is empty (no-op on TimescaleDB)."""
    connection = connection or default_connection
    if days_ahead is None:
        days_ahead = int(getattr(settings, "FIBERSTACK_PARTITIONS_AHEAD", 3))
    today = today or timezone.now().date()
    with connection.cursor() as cursor:
        return backend(connection).ensure_partitions(cursor, today, days_ahead)
