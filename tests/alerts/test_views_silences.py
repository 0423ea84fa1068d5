"""Silence and maintenance pages: active / pending / expired silences and maintenance windows with their
next occurrences for every member; editors create and expire silences and create, edit and delete
windows through the suppression services (audited); viewers neither see the buttons nor may post."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone

from apps.alerts.models import MaintenanceWindow, Silence
from apps.audit.models import AuditEvent
from apps.core.roles import Role
from fiberstack.settings.base import CACHES
from tests.alerts.factories import SilenceFactory
from tests.alerts.factories_suppression import MaintenanceWindowFactory
from tests.hosts.factories import HostFactory

pytestmark = pytest.mark.django_db

UNREACHABLE_REDIS = {"default": {**CACHES["default"], "LOCATION": "redis://127.0.0.1:1/0"}}
ROLES = [Role.VIEWER, Role.EDITOR, Role.ADMIN, Role.OWNER]
BUTTONS = ("create-silence", "expire-silence", "create-window", "edit-window", "delete-window")


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def window_data(**overrides: Any) -> dict[str, Any]:
    data = {"name": "sunday patching", "starts_at": "2026-03-01T02:00", "duration_minutes": "120",
            "time_zone": "Europe/Berlin", "rrule": "FREQ=WEEKLY;BYDAY=SU", "until": "", "host_tags": "",
            "comment": "kernel updates"}
    data.update(overrides)
    return data


@pytest.mark.parametrize("role", ROLES)
def test_every_member_sees_silences_and_windows_and_only_editors_the_buttons(user_with_role, org, role):
    now = timezone.now()
    SilenceFactory(organization=org, matchers=[{"name": "host", "op": "=", "value": "active-1"}])
    SilenceFactory(organization=org, matchers=[{"name": "host", "op": "=", "value": "pending-1"}],
                   starts_at=now + dt.timedelta(hours=1), ends_at=now + dt.timedelta(hours=2))
    SilenceFactory(organization=org, matchers=[{"name": "host", "op": "=", "value": "expired-1"}],
                   starts_at=now - dt.timedelta(hours=2), ends_at=now - dt.timedelta(hours=1))
    MaintenanceWindowFactory(organization=org, name="nightly", rrule="FREQ=DAILY",
                             starts_at=now - dt.timedelta(days=3, minutes=5))
    response = _client(user_with_role(role)).get(reverse("alerts:silences", args=[org.slug]))
    assert response.status_code == 200
    content = response.content.decode()
    for state, host in (("active", "active-1"), ("pending", "pending-1"), ("expired", "expired-1")):
        section = content.split(f"silences-{state}")[1].split("</table>")[0]
        assert host in section, state
    assert "nightly" in content and "in progress" in content
    assert content.count('class="occurrence"') == 3  # the one in progress and the next two
    for button in BUTTONS:
        assert (f'data-action="{button}"' in content) is (role != Role.VIEWER), (button, role)


def test_a_viewer_cannot_post_silences_or_windows(member_ro, org):
    silence = SilenceFactory(organization=org)
    window = MaintenanceWindowFactory(organization=org)
    client = _client(member_ro)
    ends = silence.ends_at
    posts = [
        (reverse("alerts:silence-create", args=[org.slug]), {"matchers": 'alertname="x"', "duration": "3600"}),
        (reverse("alerts:silence-expire", args=[org.slug, silence.public_id]), {}),
        (reverse("alerts:window-create", args=[org.slug]), window_data()),
        (reverse("alerts:window-edit", args=[org.slug, window.public_id]), window_data(name="renamed")),
        (reverse("alerts:window-delete", args=[org.slug, window.public_id]), {}),
    ]
    for url, data in posts:
        assert client.post(url, data).status_code == 403, url
    assert client.get(reverse("alerts:silence-create", args=[org.slug])).status_code == 403
    assert Silence.objects.count() == 1 and Silence.objects.get().ends_at == ends
    assert list(MaintenanceWindow.objects.values_list("name", flat=True)) == [window.name]
    assert not AuditEvent.objects.filter(organization=org).exists()


def test_an_editor_creates_and_expires_a_silence(editor, org):
    client = _client(editor)
    response = client.post(reverse("alerts:silence-create", args=[org.slug]),
                           {"matchers": 'alertname="cpu high",host=~"db-.*"', "duration": "14400", "comment": "db"})
    assert response.status_code == 302
    silence = Silence.objects.get(organization=org)
    assert silence.matchers == [{"name": "alertname", "op": "=", "value": "cpu high"},
                                {"name": "host", "op": "=~", "value": "db-.*"}]
    assert dt.timedelta(hours=3, minutes=59) < silence.ends_at - silence.starts_at <= dt.timedelta(hours=4)
    client.post(reverse("alerts:silence-expire", args=[org.slug, silence.public_id]))
    silence.refresh_from_db()
    assert silence.ends_at <= timezone.now()
    assert set(AuditEvent.objects.filter(organization=org).values_list("action", flat=True)) == {
        "silence.created", "silence.expired"}


def test_a_silence_with_an_explicit_start_and_end(editor, org):
    start = (timezone.now() + dt.timedelta(days=1)).replace(second=0, microsecond=0)
    end = start + dt.timedelta(hours=3)
    _client(editor).post(reverse("alerts:silence-create", args=[org.slug]), {
        "matchers": 'host="web-1"', "starts_at": start.strftime("%Y-%m-%dT%H:%M"),
        "ends_at": end.strftime("%Y-%m-%dT%H:%M")})
    silence = Silence.objects.get(organization=org)
    assert (silence.starts_at, silence.ends_at) == (start, end)


def test_silence_form_shows_validation_messages(editor, org):
    client = _client(editor)
    response = client.post(reverse("alerts:silence-create", args=[org.slug]), {"matchers": 'host=~".*"',
                                                                                "duration": "3600"})
    assert response.status_code == 400
    assert "must not match the empty string" in " ".join(response.context["form"].errors["matchers"])
    assert "errorlist" in response.content.decode()
    url = reverse("alerts:silence-create", args=[org.slug])
    unparsable = client.post(url, {"matchers": "host", "duration": "3600"})
    assert "matchers" in unparsable.context["form"].errors
    lookahead = client.post(url, {"matchers": 'alertname="cpu",host=~"(?!web)db.*"', "duration": "3600"})
    assert lookahead.status_code == 400
    assert "lookarounds" in " ".join(lookahead.context["form"].errors["matchers"])
    no_end = client.post(reverse("alerts:silence-create", args=[org.slug]), {"matchers": 'host="a"', "duration": ""})
    assert "Choose a duration or an end." in no_end.content.decode()
    assert not Silence.objects.exists()


def test_an_editor_plans_edits_and_deletes_a_maintenance_window(editor, org):
    web = HostFactory(organization=org, name="web-1")
    client = _client(editor)
    response = client.post(reverse("alerts:window-create", args=[org.slug]),
                           window_data(hosts=[str(web.public_id)], host_tags="role=db"))
    assert response.status_code == 302
    window = MaintenanceWindow.objects.get(organization=org)
    # 02:00 Berlin wall time on 1 March 2026 (winter, UTC+1) is 01:00 UTC.
    assert window.starts_at == dt.datetime(2026, 3, 1, 1, 0, tzinfo=dt.UTC)
    assert window.duration_seconds == 7200 and list(window.hosts.all()) == [web]
    assert window.host_tags == {"role": "db"}
    edit_page = client.get(reverse("alerts:window-edit", args=[org.slug, window.public_id])).content.decode()
    assert 'value="2026-03-01T02:00"' in edit_page  # shown back in its own zone
    client.post(reverse("alerts:window-edit", args=[org.slug, window.public_id]),
                window_data(name="patching", duration_minutes="60"))
    window.refresh_from_db()
    assert (window.name, window.duration_seconds, list(window.hosts.all())) == ("patching", 3600, [])
    listing = client.get(reverse("alerts:silences", args=[org.slug])).content.decode()
    assert "patching" in listing and listing.count('class="occurrence"') == 3
    client.post(reverse("alerts:window-delete", args=[org.slug, window.public_id]))
    assert not MaintenanceWindow.objects.exists()
    assert [e.action for e in AuditEvent.objects.filter(organization=org).order_by("created_at", "id")] == [
        "maintenance_window.created", "maintenance_window.updated", "maintenance_window.deleted"]


def test_window_form_shows_validation_messages_per_field(editor, org):
    client = _client(editor)
    response = client.post(reverse("alerts:window-create", args=[org.slug]), window_data(rrule="FREQ=SOMETIMES"))
    assert response.status_code == 400
    assert "invalid RRULE" in " ".join(response.context["form"].errors["rrule"])
    zone = client.post(reverse("alerts:window-create", args=[org.slug]), window_data(time_zone="Mars/Olympus"))
    assert "Unknown time zone" in " ".join(zone.context["form"].errors["time_zone"])
    minutely = client.post(reverse("alerts:window-create", args=[org.slug]), window_data(rrule="FREQ=MINUTELY"))
    assert "hourly or slower" in " ".join(minutely.context["form"].errors["rrule"])
    assert not MaintenanceWindow.objects.exists()


def test_other_organizations_silences_and_windows_are_404(owner, other_org_user, org, other_org):
    silence = SilenceFactory(organization=other_org)
    window = MaintenanceWindowFactory(organization=other_org)
    foreign_host = HostFactory(organization=other_org)
    client = _client(owner)
    assert client.post(reverse("alerts:silence-expire", args=[org.slug, silence.public_id])).status_code == 404
    assert client.get(reverse("alerts:window-edit", args=[org.slug, window.public_id])).status_code == 404
    assert client.post(reverse("alerts:window-delete", args=[org.slug, window.public_id])).status_code == 404
    assert Silence.objects.get(pk=silence.pk).ends_at == silence.ends_at
    assert MaintenanceWindow.objects.filter(pk=window.pk).exists()
    # Another organization's host cannot be put in our window.
    response = client.post(reverse("alerts:window-create", args=[org.slug]), window_data(hosts=[str(
        foreign_host.public_id)]))
    assert response.status_code == 400 and "hosts" in response.context["form"].errors
    assert _client(other_org_user).get(reverse("alerts:silences", args=[org.slug])).status_code == 404


@override_settings(CACHES=UNREACHABLE_REDIS)
def test_silence_pages_render_with_redis_down(editor, org):
    SilenceFactory(organization=org)
    window = MaintenanceWindowFactory(organization=org)
    client = _client(editor)
    for url in (reverse("alerts:silences", args=[org.slug]), reverse("alerts:silence-create", args=[org.slug]),
                reverse("alerts:window-create", args=[org.slug]),
                reverse("alerts:window-edit", args=[org.slug, window.public_id])):
        assert client.get(url).status_code == 200, url


@pytest.mark.parametrize(("field", "value", "message"), [
    ("duration_minutes", str(2**31), "less than or equal to"),  # was a DataError: integer out of range
    ("starts_at", "9999-12-31T23:59", "between the years"),  # was ValueError: year 10000 is out of range
    ("until", "0001-01-01T00:00", "between the years"),
])
def test_a_window_out_of_range_is_a_field_error(editor, org, field, value, message):
    response = _client(editor).post(reverse("alerts:window-create", args=[org.slug]), window_data(**{field: value}))
    assert response.status_code == 400
    assert message in " ".join(response.context["form"].errors[field])
    assert not MaintenanceWindow.objects.exists()
