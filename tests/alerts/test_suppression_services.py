"""Suppression services: validated, audited in the same transaction, creators recorded (users and tokens),
expiry that keeps the record, and hosts/services of another organization refused naming the field."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from apps.alerts.models import MaintenanceWindow, Silence
from apps.alerts.services.suppression import (
    create_maintenance_window,
    create_silence,
    delete_maintenance_window,
    expire_silence,
    update_maintenance_window,
)
from apps.alerts.suppression import silence_state, suppression_for
from apps.audit.models import AuditEvent
from tests.alerts.factories import AlertFactory
from tests.hosts.factories import HostFactory, ServiceFactory

pytestmark = pytest.mark.django_db
HOUR = dt.timedelta(hours=1)


def audits(action: str, obj) -> int:
    return AuditEvent.objects.filter(action=action, object_id=str(obj.public_id)).count()


def test_create_silence_records_creator_and_audit(org, editor):
    silence = create_silence(organization=org, matchers='alertname="cpu"', ends_at=timezone.now() + HOUR,
                             comment="deploy", actor=editor)
    assert silence.matchers == [{"name": "alertname", "op": "=", "value": "cpu"}]
    assert silence.created_by == editor and silence.created_by_repr == editor.username
    assert abs((silence.starts_at - timezone.now()).total_seconds()) < 5
    event = AuditEvent.objects.get(action="silence.created", object_id=str(silence.public_id))
    assert event.organization_id == org.pk and event.actor_user_id == editor.pk


def test_create_silence_by_token_names_the_token(org, make_token):
    token, _ = make_token("config")
    silence = create_silence(organization=org, matchers=[{"name": "host", "op": "=", "value": "a"}],
                             ends_at=timezone.now() + HOUR, actor=token)
    assert silence.created_by is None and token.name in silence.created_by_repr


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"ends_at": timezone.now() - HOUR}, "ends_at"),
    ({"starts_at": timezone.now() + 2 * HOUR}, "ends_at"),
    ({"matchers": 'host=~"("'}, "matchers"),
    ({"matchers": []}, "matchers"),
])
def test_create_silence_refuses_bad_input_naming_the_field(org, editor, kwargs, field):
    args = {"matchers": 'alertname="cpu"', "ends_at": timezone.now() + HOUR, **kwargs}
    with pytest.raises(ValidationError) as info:
        create_silence(organization=org, actor=editor, **args)
    assert field in info.value.message_dict
    assert not Silence.objects.exists()


def test_expire_silence_ends_it_now_and_stops_suppressing(org, editor):
    silence = create_silence(organization=org, matchers='alertname="cpu"', ends_at=timezone.now() + HOUR,
                             actor=editor)
    alert = AlertFactory(organization=org)
    assert suppression_for(alert, at=timezone.now()).kind == "silence"
    expire_silence(silence=silence, actor=editor)
    silence.refresh_from_db()
    assert silence_state(silence, timezone.now()) == "expired"
    assert suppression_for(alert, at=timezone.now()) is None
    assert audits("silence.expired", silence) == 1
    # Expiring again changes nothing and records nothing.
    ends_at = silence.ends_at
    expire_silence(silence=silence, actor=editor)
    silence.refresh_from_db()
    assert silence.ends_at == ends_at and audits("silence.expired", silence) == 1


def test_expire_pending_silence_closes_it_before_it_starts(org, editor):
    start = timezone.now() + HOUR
    silence = create_silence(organization=org, matchers='alertname="cpu"', starts_at=start, ends_at=start + HOUR,
                             actor=editor)
    expire_silence(silence=silence, actor=editor)
    silence.refresh_from_db()
    now = timezone.now()
    assert silence.ends_at <= now and silence.starts_at < silence.ends_at
    assert silence_state(silence, now) == "expired"
    assert suppression_for(AlertFactory(organization=org), at=start + dt.timedelta(minutes=5)) is None


def test_create_maintenance_window_sets_scope_and_audits(org, editor):
    host = HostFactory(organization=org)
    service = ServiceFactory(organization=org)
    window = create_maintenance_window(
        organization=org, name=" patching ", starts_at=timezone.now().replace(microsecond=123456),
        duration_seconds=7200, rrule="FREQ=WEEKLY;BYDAY=SU", time_zone="Europe/Berlin", hosts=[host],
        host_tags={"role": "db"}, services=[service], actor=editor)
    assert window.name == "patching" and window.starts_at.microsecond == 0
    assert list(window.hosts.all()) == [host] and list(window.services.all()) == [service]
    assert window.created_by == editor
    event = AuditEvent.objects.get(action="maintenance_window.created", object_id=str(window.public_id))
    assert event.changes["hosts"] == [None, [str(host.public_id)]]


@pytest.mark.parametrize("field", ["hosts", "services"])
def test_maintenance_window_refuses_another_organizations_hosts_and_services(org, other_org, editor, field):
    foreign = {"hosts": HostFactory(organization=other_org), "services": ServiceFactory(organization=other_org)}
    with pytest.raises(ValidationError) as info:
        create_maintenance_window(organization=org, name="x", starts_at=timezone.now(), duration_seconds=60,
                                  actor=editor, **{field: [foreign[field]]})
    assert field in info.value.message_dict
    assert not MaintenanceWindow.objects.exists()


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"rrule": "FREQ=SOMETIMES"}, "rrule"),
    ({"time_zone": "Europe/Atlantis"}, "time_zone"),
    ({"host_tags": ["role"]}, "host_tags"),
    ({"duration_seconds": 0}, "duration"),
    ({"name": ""}, "name"),
    ({"until": timezone.now() - 10 * HOUR}, "until"),
])
def test_maintenance_window_refuses_bad_schedules_naming_the_field(org, editor, kwargs, field):
    args = {"name": "x", "starts_at": timezone.now(), "duration_seconds": 60, "rrule": "FREQ=DAILY", **kwargs}
    with pytest.raises(ValidationError) as info:
        create_maintenance_window(organization=org, actor=editor, **args)
    assert field in info.value.message_dict


def test_update_maintenance_window_replaces_scope_and_audits_the_diff(org, editor):
    a, b = HostFactory(organization=org), HostFactory(organization=org)
    window = create_maintenance_window(organization=org, name="x", starts_at=timezone.now(), duration_seconds=60,
                                       hosts=[a], actor=editor)
    update_maintenance_window(window=window, actor=editor, hosts=[b], rrule="FREQ=DAILY")
    window.refresh_from_db()
    assert list(window.hosts.all()) == [b] and window.rrule == "FREQ=DAILY"
    event = AuditEvent.objects.get(action="maintenance_window.updated", object_id=str(window.public_id))
    assert set(event.changes) == {"hosts", "rrule"}
    update_maintenance_window(window=window, actor=editor, comment="")
    assert audits("maintenance_window.updated", window) == 1  # nothing changed, nothing recorded
    with pytest.raises(ValidationError):
        update_maintenance_window(window=window, actor=editor, time_zone="Nowhere/Else")
    window.refresh_from_db()
    assert window.time_zone == "UTC"


def test_delete_maintenance_window_is_audited(org, editor):
    window = create_maintenance_window(organization=org, name="x", starts_at=timezone.now(), duration_seconds=60,
                                       actor=editor)
    delete_maintenance_window(window=window, actor=editor)
    assert not MaintenanceWindow.objects.exists()
    assert audits("maintenance_window.deleted", window) == 1
