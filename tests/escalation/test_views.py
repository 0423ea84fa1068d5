"""The on-call page /<org>/oncall/: the calendar of each schedule's final schedule, who is on call now,
overrides (editors add and remove them, viewers only see them; POSTs refused), policies with their
steps, other organizations 404, a constant query count, and rendering with Redis unreachable."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.core.roles import Role
from apps.escalation.choices import StepAction
from apps.escalation.models import ScheduleOverride
from apps.escalation.policy_services import StepData
from tests.escalation.factories import OnCallScheduleFactory, ScheduleLayerFactory, ScheduleOverrideFactory
from tests.escalation.factories_policies import policy_with_steps

pytestmark = pytest.mark.django_db


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _url(org: Any, name: str = "escalation:oncall", *args: Any) -> str:
    return reverse(name, args=[org.slug, *args])


@pytest.fixture
def rota(org: Any, owner: Any, editor: Any) -> Any:
    """A UTC schedule with a daily 00:00 handoff between owner and editor, starting today."""
    schedule = OnCallScheduleFactory(organization=org, name="primary", time_zone="UTC")
    ScheduleLayerFactory(schedule=schedule, priority=0, start_date=timezone.now().date(), handoff_time=dt.time(0),
                         users=[owner, editor])
    return schedule


def test_calendar_shows_fourteen_days_of_the_final_schedule(member_ro: Any, org: Any, rota: Any, owner: Any,
                                                             editor: Any) -> None:
    response = _client(member_ro).get(_url(org))
    assert response.status_code == 200
    (view,) = response.context["schedules"]
    today = timezone.now().date()
    assert view.days[0].date == today and view.days[-1].date == today + dt.timedelta(days=14)
    assert len(view.days) == 15  # [now, now + 14 d) touches 15 local days
    tomorrow = view.days[1]
    assert [seg.shift.user for seg in tomorrow.segments] == [editor]
    assert (tomorrow.segments[0].left, tomorrow.segments[0].width) == (0.0, 100.0)
    assert [seg.shift.user for seg in view.days[2].segments] == [owner]
    assert view.on_call == [owner] and view.source == "layer:0"
    html = response.content.decode()
    assert f'<tr data-day="{tomorrow.date:%Y-%m-%d}">' in html
    assert f'title="{editor.get_username()} (layer 0)"' in html


def test_calendar_shows_an_override_as_its_own_source(member_ro: Any, org: Any, rota: Any, editor: Any,
                                                      admin_member: Any) -> None:
    day = timezone.now().date() + dt.timedelta(days=3)
    ScheduleOverrideFactory(schedule=rota, user=admin_member, start=dt.datetime.combine(day, dt.time(9), dt.UTC),
                            end=dt.datetime.combine(day, dt.time(12), dt.UTC))
    response = _client(member_ro).get(_url(org))
    (view,) = response.context["schedules"]
    segments = next(d for d in view.days if d.date == day).segments
    assert [(s.shift.user, s.shift.source, s.start.hour, s.end.hour) for s in segments] == [
        (editor, "layer:0", 0, 9), (admin_member, "override", 9, 12), (editor, "layer:0", 12, 0)]
    assert segments[1].left == 37.5 and segments[1].width == 12.5
    assert 'class="shift override"' in response.content.decode()


@pytest.mark.parametrize(("role", "can_change"), [
    (Role.VIEWER, False), (Role.EDITOR, True), (Role.ADMIN, True), (Role.OWNER, True),
])
def test_role_matrix_buttons_and_posts(user_with_role: Any, org: Any, rota: Any, role: str, can_change: bool,
                                       editor: Any) -> None:
    override = ScheduleOverrideFactory(schedule=rota, user=editor, start=timezone.now(),
                                       end=timezone.now() + dt.timedelta(hours=1))
    client = _client(user_with_role(role))
    html = client.get(_url(org)).content.decode()
    assert ('id="override-form"' in html) is can_change
    assert ("Remove</button>" in html) is can_change
    assert f'data-override="{override.public_id}"' in html  # everyone sees it
    start = timezone.now() + dt.timedelta(days=1)
    created = client.post(_url(org, "escalation:override-create"), {
        "schedule": rota.public_id, "user": editor.pk,
        "start": start.strftime("%Y-%m-%dT%H:%M"), "end": (start + dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")})
    deleted = client.post(_url(org, "escalation:override-delete", override.public_id))
    if can_change:
        assert created.status_code == 302 and deleted.status_code == 302
        assert ScheduleOverride.objects.filter(schedule=rota).count() == 1
        assert not ScheduleOverride.objects.filter(pk=override.pk).exists()
        assert AuditEvent.objects.filter(action="schedule.override_created").count() == 1
        assert AuditEvent.objects.filter(action="schedule.override_deleted").count() == 1
    else:
        assert created.status_code == 403 and deleted.status_code == 403
        assert list(ScheduleOverride.objects.all()) == [override]


def test_override_times_are_read_in_the_schedules_zone(editor: Any, org: Any, owner: Any) -> None:
    berlin = OnCallScheduleFactory(organization=org, name="berlin", time_zone="Europe/Berlin")
    response = _client(editor).post(_url(org, "escalation:override-create"), {
        "schedule": berlin.public_id, "user": owner.pk, "start": "2030-07-01T09:00", "end": "2030-07-01T18:00"})
    assert response.status_code == 302
    override = ScheduleOverride.objects.get()
    assert (override.start, override.end) == (dt.datetime(2030, 7, 1, 7, tzinfo=dt.UTC),
                                              dt.datetime(2030, 7, 1, 16, tzinfo=dt.UTC))
    assert override.created_by == editor


def test_bad_override_form_is_a_400_naming_the_field(editor: Any, org: Any, rota: Any, other_org_user: Any) -> None:
    client = _client(editor)
    backwards = client.post(_url(org, "escalation:override-create"), {
        "schedule": rota.public_id, "user": editor.pk, "start": "2030-07-01T18:00", "end": "2030-07-01T09:00"})
    assert backwards.status_code == 400
    assert backwards.context["form"].errors["end"] == ["An override must end after it starts."]
    outsider = client.post(_url(org, "escalation:override-create"), {
        "schedule": rota.public_id, "user": other_org_user.pk, "start": "2030-07-01T09:00",
        "end": "2030-07-01T18:00"})
    assert outsider.status_code == 400 and "user" in outsider.context["form"].errors
    assert not ScheduleOverride.objects.exists()


def test_other_org_gets_404(other_org_user: Any, org: Any, other_org: Any, rota: Any, editor: Any) -> None:
    override = ScheduleOverrideFactory(schedule=rota, user=editor)
    client = _client(other_org_user)
    assert client.get(_url(org)).status_code == 404
    assert client.post(_url(org, "escalation:override-delete", override.public_id)).status_code == 404
    # Through their own organization (where they are a member) our override and schedule are not found.
    other_org.memberships.filter(user=other_org_user).update(role=Role.OWNER)
    assert client.post(_url(other_org, "escalation:override-delete", override.public_id)).status_code == 404
    response = client.post(_url(other_org, "escalation:override-create"), {
        "schedule": rota.public_id, "user": other_org_user.pk, "start": "2030-07-01T09:00",
        "end": "2030-07-01T18:00"})
    assert response.status_code == 400 and "schedule" in response.context["form"].errors
    assert ScheduleOverride.objects.count() == 1
    assert "primary" not in client.get(_url(other_org)).content.decode()


def test_anonymous_is_sent_to_login(client: Client, org: Any) -> None:
    response = client.get(_url(org))
    assert response.status_code == 302 and response["Location"].startswith(reverse("accounts:login"))


def test_policies_are_listed_with_their_steps(member_ro: Any, org: Any, rota: Any, owner: Any) -> None:
    policy_with_steps(org, [StepData(action=StepAction.NOTIFY_SCHEDULE, schedule=rota, wait_seconds=300),
                            StepData(action=StepAction.NOTIFY_USER, users=[owner])], name="critical path",
                      repeat_count=2)
    html = _client(member_ro).get(_url(org)).content.decode()
    section = html.split('id="policies"')[1]
    assert "critical path" in section and "repeats 2 times" in section
    assert f'Notify the on-call of <a href="#schedule-{rota.public_id}">primary</a>, then wait 300 s' in section
    assert f"Notify {owner.get_username()}</li>" in section


def test_query_count_does_not_grow_with_schedules(member_ro: Any, org: Any, owner: Any, editor: Any) -> None:
    client = _client(member_ro)

    def add(n: int) -> None:
        for _ in range(n):
            schedule = OnCallScheduleFactory(organization=org)
            ScheduleLayerFactory(schedule=schedule, users=[owner, editor])
            ScheduleOverrideFactory(schedule=schedule, user=owner, start=timezone.now(),
                                    end=timezone.now() + dt.timedelta(days=2))
            policy_with_steps(org, [StepData(action=StepAction.NOTIFY_SCHEDULE, schedule=schedule)],
                              name=f"p-{schedule.name}")

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(_url(org)).status_code == 200
        return len(queries)

    add(1)
    client.get(_url(org))  # the first request of a session also records its activity
    small = count()
    add(6)
    assert count() == small


def test_page_renders_with_redis_unreachable(member_ro: Any, org: Any, rota: Any, owner: Any) -> None:
    from fiberstack.settings.base import CACHES

    with override_settings(CACHES={"default": {**CACHES["default"], "LOCATION": "redis://127.0.0.1:1/0"}}):
        response = _client(member_ro).get(_url(org))
    assert response.status_code == 200
    assert response.context["schedules"][0].on_call == [owner]


def test_nav_links_to_the_oncall_page(member_ro: Any, org: Any) -> None:
    html = _client(member_ro).get(reverse("dashboards:overview", args=[org.slug])).content.decode()
    assert '<a href="/acme/oncall/">On call</a>' in html


def test_calendar_days_and_times_are_in_the_schedules_zone(member_ro: Any, org: Any, owner: Any,
                                                           editor: Any) -> None:
    berlin = OnCallScheduleFactory(organization=org, name="berlin", time_zone="Europe/Berlin")
    ScheduleLayerFactory(schedule=berlin, priority=0, start_date=dt.date(2026, 1, 1), handoff_time=dt.time(9),
                         users=[owner, editor])
    response = _client(member_ro).get(_url(org))
    (view,) = response.context["schedules"]
    day = view.days[2]
    assert [(s.start.astimezone(dt.UTC).hour, s.end.astimezone(dt.UTC).hour) for s in day.segments] in (
        [(23, 8), (8, 23)], [(22, 7), (7, 22)])  # 09:00 Berlin is 08:00 UTC in winter, 07:00 in summer
    row = response.content.decode().split(f'<tr data-day="{day.date:%Y-%m-%d}">')[1].split("</tr>")[0]
    assert "00:00\u201309:00 <strong>" in row and "09:00\u201324:00 <strong>" in row  # en dash


@pytest.mark.parametrize(("field", "value"), [("end", "0001-01-01T00:00"), ("start", "9999-12-31T23:59")])
def test_an_override_time_python_cannot_shift_is_a_field_error(editor: Any, org: Any, owner: Any, field: str,
                                                               value: str) -> None:
    """Year 1 in Europe/Berlin is before datetime.min in UTC: it was an OverflowError (a 500)."""
    schedule = OnCallScheduleFactory(organization=org, time_zone="Europe/Berlin")
    data = {"schedule": str(schedule.public_id), "user": str(owner.pk), "start": "2026-06-01T09:00",
            "end": "2026-06-01T18:00", field: value}
    response = _client(editor).post(_url(org, "escalation:override-create"), data)
    assert response.status_code == 400
    assert "between the years" in " ".join(response.context["form"].errors[field])
    assert not ScheduleOverride.objects.exists()
