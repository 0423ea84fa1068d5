"""Admin for schedules, overrides and feeds: every write goes through the services (the same
validation as the API, audited), layers are edited as the API's JSON."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.test import Client

from apps.audit.models import AuditEvent
from apps.escalation import services
from apps.escalation.models import CalendarFeed, OnCallSchedule, ScheduleOverride
from tests.escalation.factories import OnCallScheduleFactory, ScheduleLayerFactory, ScheduleOverrideFactory
from tests.organizations.factories import UserFactory

pytestmark = pytest.mark.django_db

LAYERS = [{"rotation": "daily", "handoff_time": "09:00", "start_date": "2026-03-27", "members": ["alice", "erin"],
           "restrictions": [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"}]}]


@pytest.fixture
def admin_client_() -> Client:
    client = Client()
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


def test_admin_adds_a_schedule_with_layers_through_the_service(admin_client_, org, owner, editor):
    response = admin_client_.post("/admin/escalation/oncallschedule/add/", {
        "organization": org.pk, "name": "From admin", "time_zone": "Europe/Berlin", "description": "",
        "layers_json": json.dumps(LAYERS)})
    assert response.status_code == 302, response.content[:3000]
    schedule = OnCallSchedule.objects.get(name="From admin")
    assert schedule.who_is_on_call(dt.datetime(2026, 3, 27, 8, tzinfo=dt.UTC)) == [owner]  # Fri 09:00 CET
    assert schedule.who_is_on_call(dt.datetime(2026, 3, 28, 10, tzinfo=dt.UTC)) == []  # Saturday: restricted
    event = AuditEvent.objects.get(action="schedule.created")
    assert event.actor_user.username == "root"


def test_admin_refuses_outsiders_and_bad_zones_with_form_errors(admin_client_, org, owner, other_org_user):
    bad = [{**LAYERS[0], "members": ["alice", "charlie"]}]
    response = admin_client_.post("/admin/escalation/oncallschedule/add/", {
        "organization": org.pk, "name": "x", "time_zone": "Mars/Olympus", "layers_json": json.dumps(bad)})
    assert response.status_code == 200
    assert b"charlie" in response.content and b"Unknown time zone" in response.content
    assert not OnCallSchedule.objects.exists()


def test_admin_edit_replaces_layers_and_shows_them_as_json(admin_client_, org, owner, editor):
    schedule = OnCallScheduleFactory(organization=org, name="Primary")
    ScheduleLayerFactory(schedule=schedule, priority=0, users=[owner])
    page = admin_client_.get(f"/admin/escalation/oncallschedule/{schedule.pk}/change/")
    assert page.status_code == 200 and b"&quot;members&quot;: [\n      &quot;alice&quot;" in page.content
    response = admin_client_.post(f"/admin/escalation/oncallschedule/{schedule.pk}/change/", {
        "name": "Primary", "time_zone": "UTC", "description": "", "layers_json": json.dumps(LAYERS)})
    assert response.status_code == 302, response.content[:3000]
    layer = schedule.layers.get()
    assert [m.user for m in layer.memberships.order_by("position")] == [owner, editor]
    assert AuditEvent.objects.filter(action="schedule.updated").exists()


def test_admin_deletes_schedules_and_overrides_through_the_services(admin_client_, org, owner):
    schedule = OnCallScheduleFactory(organization=org)
    override = ScheduleOverrideFactory(schedule=schedule, user=owner)
    response = admin_client_.post(f"/admin/escalation/scheduleoverride/{override.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not ScheduleOverride.objects.exists()
    response = admin_client_.post(f"/admin/escalation/oncallschedule/{schedule.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert list(AuditEvent.objects.filter(action__startswith="schedule.").order_by("pk")
                .values_list("action", flat=True)) == [
        "schedule.override_deleted", "schedule.deleted"]


def test_admin_adds_an_override_through_the_service(admin_client_, org, owner, other_org_user):
    schedule = OnCallScheduleFactory(organization=org)
    data = {"schedule": schedule.pk, "start_0": "2026-05-01", "start_1": "10:00:00", "end_0": "2026-05-01",
            "end_1": "12:00:00"}
    refused = admin_client_.post("/admin/escalation/scheduleoverride/add/", {**data, "user": other_org_user.pk})
    assert refused.status_code == 200 and b"charlie" in refused.content
    backwards = admin_client_.post("/admin/escalation/scheduleoverride/add/",
                                   {**data, "user": owner.pk, "end_1": "09:00:00"})
    assert backwards.status_code == 200 and b"must end after it starts" in backwards.content
    response = admin_client_.post("/admin/escalation/scheduleoverride/add/", {**data, "user": owner.pk})
    assert response.status_code == 302, response.content[:3000]
    override = ScheduleOverride.objects.get()
    assert override.organization == org
    assert AuditEvent.objects.filter(action="schedule.override_created").count() == 1
    changed = admin_client_.post(f"/admin/escalation/scheduleoverride/{override.pk}/change/",
                                 {**data, "user": owner.pk, "end_1": "13:00:00"})
    assert changed.status_code == 302, changed.content[:3000]
    override.refresh_from_db()
    assert override.end == dt.datetime(2026, 5, 1, 13, tzinfo=dt.UTC)
    assert AuditEvent.objects.get(action="schedule.override_updated").changes["end"][1].startswith("2026-05-01T13")


def test_admin_revokes_calendar_feeds(admin_client_, org, owner):
    feed = services.create_calendar_feed(organization=org, user=owner, actor=owner)
    response = admin_client_.post("/admin/escalation/calendarfeed/", {"action": "revoke",
                                                                       "_selected_action": [feed.pk]})
    assert response.status_code == 302
    assert CalendarFeed.objects.get().revoked_at is not None


def test_admin_turns_shift_change_notices_on_and_off_through_the_service(admin_client_, org, other_org):
    from tests.alerts.factories import NotificationChannelFactory

    channel = NotificationChannelFactory(organization=org, name="oncall-room")
    foreign = NotificationChannelFactory(organization=other_org, name="theirs")
    schedule = OnCallScheduleFactory(organization=org, name="Primary")
    url = f"/admin/escalation/oncallschedule/{schedule.pk}/change/"
    page = admin_client_.get(url)
    assert b"oncall-room" in page.content and b"theirs" not in page.content  # only its organization's channels
    base = {"name": "Primary", "time_zone": "UTC", "description": "", "layers_json": "[]"}

    refused = admin_client_.post(url, {**base, "notify_shift_changes": "on"})
    assert refused.status_code == 200 and b"Shift-change notices need a channel." in refused.content
    foreign_refused = admin_client_.post(url, {**base, "notify_shift_changes": "on",
                                               "shift_change_channel": foreign.pk})
    assert foreign_refused.status_code == 200 and b"Select a valid choice" in foreign_refused.content
    schedule.refresh_from_db()
    assert not schedule.notify_shift_changes and schedule.shift_change_channel is None

    saved = admin_client_.post(url, {**base, "notify_shift_changes": "on", "shift_change_channel": channel.pk})
    assert saved.status_code == 302, saved.content[:3000]
    schedule.refresh_from_db()
    assert schedule.notify_shift_changes and schedule.shift_change_channel == channel
    event = AuditEvent.objects.filter(action="schedule.updated").latest("pk")
    assert event.actor_user.username == "root"
    assert event.changes["notify_shift_changes"] == [False, True]
    assert event.changes["shift_change_channel"] == [None, str(channel.public_id)]

    off = admin_client_.post(url, {**base, "shift_change_channel": ""})
    assert off.status_code == 302
    schedule.refresh_from_db()
    assert not schedule.notify_shift_changes and schedule.shift_change_channel is None
