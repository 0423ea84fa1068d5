"""The audit log is append-only in the database, whatever the code path."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

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


def _backdate(event: AuditEvent, days: int) -> None:
    """Move a row into the past; only the owner (which the suite connects as) can switch the guard off."""
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER audit_auditevent_append_only")
        cursor.execute("UPDATE audit_auditevent SET created_at = created_at - make_interval(days => %s) "
                       "WHERE id = %s", [days, event.pk])
        cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER audit_auditevent_append_only")


def test_database_rejects_truncate_of_the_audit_log(org):
    event = record_event(action="test.happened", actor=None, organization=org)
    with pytest.raises(DatabaseError, match="TRUNCATE refused"), transaction.atomic(), \
            connection.cursor() as cursor:
        cursor.execute("TRUNCATE audit_auditevent")
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_retention_deletes_only_rows_older_than_the_cutoff(org):
    old = record_event(action="test.old", actor=None, organization=org)
    new = record_event(action="test.new", actor=None, organization=org)
    edge = record_event(action="test.edge", actor=None, organization=org)
    _backdate(old, 30)
    _backdate(edge, 19)
    assert purge_events_older_than(20) == 1
    assert set(AuditEvent.objects.values_list("pk", flat=True)) == {new.pk, edge.pk}


def test_retention_refuses_a_keep_period_below_the_floor(org):
    event = record_event(action="test.happened", actor=None, organization=org)
    _backdate(event, 30)
    with pytest.raises(DatabaseError, match="below the floor"), transaction.atomic():
        purge_events_older_than(0)
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_retention_floor_is_the_owners_to_raise(org):
    event = record_event(action="test.happened", actor=None, organization=org)
    _backdate(event, 30)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("ALTER FUNCTION audit_purge_events(integer) SET fiberstack.audit_min_keep_days = '90'")
            # A session setting of the caller's own does not lower the owner's floor.
            cursor.execute("SET LOCAL fiberstack.audit_min_keep_days = '1'")
        with pytest.raises(DatabaseError, match="floor of 90"), transaction.atomic():
            purge_events_older_than(20)
        transaction.set_rollback(True)
    assert purge_events_older_than(20) == 1


def test_setting_the_retention_switch_is_not_enough_to_delete(org):
    event = record_event(action="test.happened", actor=None, organization=org)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL fiberstack.audit_retention = 'on'")
            cursor.execute("CREATE ROLE fiberstack_audit_outsider")
            cursor.execute("GRANT SELECT, DELETE ON audit_auditevent TO fiberstack_audit_outsider")
            cursor.execute("SET LOCAL ROLE fiberstack_audit_outsider")
            with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
                cursor.execute("DELETE FROM audit_auditevent WHERE id = %s", [event.pk])
        transaction.set_rollback(True)
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_retention_permission_does_not_leak_out_of_its_transaction(org):
    purge_events_older_than(1)
    event = record_event(action="test.after", actor=None, organization=org)
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()
