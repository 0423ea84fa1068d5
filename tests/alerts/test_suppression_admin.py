"""Admin for silences and maintenance windows: pages render, adds/changes/deletes go through the services
(audited), silences are expired rather than edited, and bad schedules are form errors, not 500s."""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils import timezone

from apps.alerts.models import MaintenanceWindow, Silence
from apps.audit.models import AuditEvent
from tests.alerts.factories import SilenceFactory
from tests.alerts.factories_suppression import MaintenanceWindowFactory
from tests.hosts.factories import HostFactory
from tests.organizations.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_() -> Client:
    client = Client()
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


def _dt(moment) -> dict[str, str]:
    local = timezone.localtime(moment)
    return {"0": local.strftime("%Y-%m-%d"), "1": local.strftime("%H:%M:%S")}


def _split(name: str, moment) -> dict[str, str]:
    return {f"{name}_{k}": v for k, v in _dt(moment).items()}


def test_changelists_render(admin_client_, org):
    SilenceFactory(organization=org)
    MaintenanceWindowFactory(organization=org, name="patching", rrule="FREQ=DAILY")
    assert b'alertname=&quot;cpu&quot;' in admin_client_.get("/admin/alerts/silence/").content
    assert b"patching" in admin_client_.get("/admin/alerts/maintenancewindow/").content


def test_add_silence_goes_through_the_service(admin_client_, org):
    now = timezone.now()
    response = admin_client_.post("/admin/alerts/silence/add/", {
        "organization": org.pk, "matchers": 'alertname="cpu",host=~"db-.*"', "comment": "from admin",
        **_split("starts_at", now), **_split("ends_at", now + timezone.timedelta(hours=1))})
    assert response.status_code == 302, response.content[:3000]
    silence = Silence.objects.get()
    assert silence.matchers[1] == {"name": "host", "op": "=~", "value": "db-.*"}
    assert silence.created_by_repr == "root"
    assert AuditEvent.objects.filter(action="silence.created", object_id=str(silence.public_id)).exists()


def test_add_silence_with_a_bad_regex_is_a_form_error(admin_client_, org):
    now = timezone.now()
    response = admin_client_.post("/admin/alerts/silence/add/", {
        "organization": org.pk, "matchers": 'host=~"(db"', **_split("starts_at", now),
        **_split("ends_at", now + timezone.timedelta(hours=1))})
    assert response.status_code == 200 and b"invalid regular expression" in response.content
    assert not Silence.objects.exists()


def test_expire_action(admin_client_, org):
    silence = SilenceFactory(organization=org)
    response = admin_client_.post("/admin/alerts/silence/", {"action": "expire_selected",
                                                             "_selected_action": [silence.pk]})
    assert response.status_code == 302
    silence.refresh_from_db()
    assert silence.ends_at <= timezone.now()
    assert AuditEvent.objects.filter(action="silence.expired", object_id=str(silence.public_id)).exists()


def _window_form(org, **overrides) -> dict:
    data = {"organization": org.pk, "name": "patching", **_split("starts_at", timezone.now()),
            "duration_seconds": "3600", "rrule": "FREQ=WEEKLY;BYDAY=SU", "time_zone": "Europe/Berlin",
            "host_tags": "{}", "comment": ""}
    data.update(overrides)
    return data


def test_add_and_change_window_go_through_the_services(admin_client_, org):
    host = HostFactory(organization=org)
    response = admin_client_.post("/admin/alerts/maintenancewindow/add/", _window_form(org, hosts=[host.pk]))
    assert response.status_code == 302, response.content[:3000]
    window = MaintenanceWindow.objects.get()
    assert list(window.hosts.all()) == [host]
    assert AuditEvent.objects.filter(action="maintenance_window.created", object_id=str(window.public_id)).exists()
    data = _window_form(org, name="patched", hosts=[])
    data.pop("organization")
    response = admin_client_.post(f"/admin/alerts/maintenancewindow/{window.pk}/change/", data)
    assert response.status_code == 302, response.content[:3000]
    window.refresh_from_db()
    assert window.name == "patched" and not window.hosts.exists()
    event = AuditEvent.objects.get(action="maintenance_window.updated", object_id=str(window.public_id))
    assert "hosts" in event.changes and "name" in event.changes


@pytest.mark.parametrize(("overrides", "message"), [
    ({"rrule": "FREQ=WHENEVER"}, b"invalid RRULE"),
    ({"time_zone": "Moon/Base"}, b"unknown time zone"),
])
def test_bad_window_schedule_is_a_form_error(admin_client_, org, overrides, message):
    response = admin_client_.post("/admin/alerts/maintenancewindow/add/", _window_form(org, **overrides))
    assert response.status_code == 200 and message in response.content
    assert not MaintenanceWindow.objects.exists()


def test_window_with_another_organizations_host_is_a_form_error(admin_client_, org, other_org):
    foreign = HostFactory(organization=other_org)
    response = admin_client_.post("/admin/alerts/maintenancewindow/add/", _window_form(org, hosts=[foreign.pk]))
    assert response.status_code == 200 and b"not in this organization" in response.content
    assert not MaintenanceWindow.objects.exists()


def test_delete_window_is_audited(admin_client_, org):
    window = MaintenanceWindowFactory(organization=org)
    response = admin_client_.post(f"/admin/alerts/maintenancewindow/{window.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not MaintenanceWindow.objects.exists()
    assert AuditEvent.objects.filter(action="maintenance_window.deleted", object_id=str(window.public_id)).exists()
