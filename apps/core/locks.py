"""PostgreSQL advisory locks for singleton jobs. Every key comes from this one registry so that two
jobs can never collide on a number (NetBox ADVISORY_LOCK_KEYS)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection

ADVISORY_LOCK_KEYS: dict[str, int] = {
    "metrics.ensure_partitions": 100_001,
    "metrics.rollup": 100_002,
    "metrics.apply_retention": 100_003,
    "audit.apply_retention": 100_004,
    "alerts.evaluate_rules": 100_005,
    "logs.maintain_storage": 100_006,
}


@contextmanager
def advisory_lock(name: str) -> Iterator[bool]:
    """Try to take the session-level advisory lock `name`; yields False (without waiting) when another
    process holds it, so a second copy of a singleton job simply skips its turn."""
    key = ADVISORY_LOCK_KEYS[name]
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        acquired = bool(cursor.fetchone()[0])
    try:
        yield acquired
    finally:
        if acquired:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
