"""Audit retention: the one sanctioned way rows leave the append-only log.

The application's database role may not delete audit rows (migration 0003): it calls
``audit_purge_events(keep_days)``, a SECURITY DEFINER function owned by the migrations' role, which
deletes rows older than ``keep_days`` by the database's own clock. So the app can neither pick a cutoff
in the future nor delete anything newer than the floor the owner set on that function."""

from __future__ import annotations

from django.db import connection


def purge_events_older_than(days: int) -> int:
    """Delete audit rows older than `days` days; returns how many were removed."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT audit_purge_events(%s)", [days])
        return int(cursor.fetchone()[0])
