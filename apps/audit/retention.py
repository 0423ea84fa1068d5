"""Audit retention: the one sanctioned way rows leave the append-only log.

The trigger installed by migration 0002 refuses DELETE unless the transaction has set
`fiberstack.audit_retention = on` (SET LOCAL, so it cannot leak to other work on the connection)."""

from __future__ import annotations

import datetime

from django.db import connection, transaction
from django.utils import timezone

from apps.audit.models import AuditEvent


def purge_events_older_than(days: int, *, now: datetime.datetime | None = None) -> int:
    """Delete audit rows older than `days`; returns how many were removed."""
    cutoff = (now or timezone.now()) - datetime.timedelta(days=days)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL fiberstack.audit_retention = 'on'")
        deleted, _ = AuditEvent.objects.filter(created_at__lt=cutoff).delete()
        with connection.cursor() as cursor:
            # Switch it off again at once: when called inside an outer transaction, SET LOCAL would
            # otherwise last until that transaction ends.
            cursor.execute("SELECT set_config('fiberstack.audit_retention', 'off', true)")
    return deleted
