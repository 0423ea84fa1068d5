"""The audit log is append-only in the database, whatever the code path."""

from __future__ import annotations

import datetime

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.audit.retention import purge_events_older_than
from apps.audit.services import record_event

pytestmark = pytest.mark.django_db


def test_database_rejects_update_of_audit_rows(org):
    event = record_event(action="test.happened", actor=None, organization=org)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(action="test.rewritten")
    event.refresh_from_db()
    assert event.action == "test.happened"


def test_database_rejects_delete_of_audit_rows(org):
    event = record_event(action="test.happened", actor=None, organization=org)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE id = %s", [event.pk])
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_retention_deletes_only_rows_older_than_the_cutoff(org):
    old = record_event(action="test.old", actor=None, organization=org)
    new = record_event(action="test.new", actor=None, organization=org)
    later = timezone.now() + datetime.timedelta(days=10)
    # `old` is backdated 30 days; with "now" 10 days ahead and 20 days kept, only `old` is past the cutoff.
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER audit_auditevent_append_only")
        cursor.execute("UPDATE audit_auditevent SET created_at = created_at - interval '30 days' WHERE id = %s",
                       [old.pk])
        cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER audit_auditevent_append_only")
    deleted = purge_events_older_than(20, now=later)
    assert deleted == 1
    assert list(AuditEvent.objects.values_list("pk", flat=True)) == [new.pk]


def test_retention_permission_does_not_leak_out_of_its_transaction(org):
    purge_events_older_than(1)
    event = record_event(action="test.after", actor=None, organization=org)
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()
