"""Shift-change notices: with a frozen clock across a daily 09:00 (Europe/Berlin) handoff, the beat check
posts "X is now on call for <schedule> (until …)" to the schedule's channel exactly once per handoff."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from apps.alerts.models import Notification
from apps.audit.models import AuditEvent
from apps.escalation import services, shift_changes
from apps.escalation.models import OnCallSchedule
from apps.escalation.tasks import check_shift_changes as check_task
from tests.alerts.factories import NotificationChannelFactory
from tests.escalation.factories import OnCallScheduleFactory, ScheduleLayerFactory

pytestmark = pytest.mark.django_db

BEFORE = dt.datetime(2026, 6, 1, 6, 50, tzinfo=dt.UTC)  # 08:50 in Berlin (CEST)
HANDOFF = dt.datetime(2026, 6, 1, 7, 0, tzinfo=dt.UTC)  # 09:00 in Berlin


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock(BEFORE)
    monkeypatch.setattr(timezone, "now", fake)
    return fake


@pytest.fixture
def schedule(org: Any, owner: Any, editor: Any) -> OnCallSchedule:
    channel = NotificationChannelFactory(organization=org, name="oncall-room")
    schedule = OnCallScheduleFactory(organization=org, name="Primary", time_zone="Europe/Berlin",
                                     notify_shift_changes=True, shift_change_channel=channel)
    ScheduleLayerFactory(schedule=schedule, priority=0, users=[owner, editor])
    return schedule


def _notices(schedule: OnCallSchedule) -> list[Notification]:
    return list(Notification.objects.filter(channel=schedule.shift_change_channel, kind="notice").order_by("pk"))


def test_one_notice_per_handoff_across_a_frozen_clock(schedule: OnCallSchedule, clock: Clock) -> None:
    before = schedule.who_is_on_call(BEFORE)[0]
    after = schedule.who_is_on_call(HANDOFF)[0]
    assert before != after

    assert check_task.apply().get() == "0 shift changes noticed"  # first check: records who is on call
    assert _notices(schedule) == []
    clock.now = BEFORE + dt.timedelta(minutes=1)
    assert shift_changes.check_shift_changes() == 0

    clock.now = HANDOFF
    assert shift_changes.check_shift_changes() == 1
    assert shift_changes.check_shift_changes() == 0  # the same handoff, checked again
    clock.now = HANDOFF + dt.timedelta(minutes=1)
    assert shift_changes.check_shift_changes() == 0

    [notice] = _notices(schedule)
    summary = notice.payload["alerts"][0]["annotations"]["summary"]
    assert summary == (f"{after.get_username()} is now on call for Primary "
                       "(until 2026-06-02 09:00 Europe/Berlin)")
    assert notice.group_id is None and notice.status == "pending"
    event = AuditEvent.objects.get(action="schedule.shift_changed")
    assert event.changes["on_call"] == [[before.pk], [after.pk]]

    clock.now = HANDOFF + dt.timedelta(days=1)  # the next handoff: one more notice, back to the first person
    assert shift_changes.check_shift_changes() == 1
    assert before.get_username() in _notices(schedule)[-1].payload["alerts"][0]["annotations"]["summary"]


def test_a_check_that_lost_the_race_sends_nothing(schedule: OnCallSchedule, clock: Clock,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    shift_changes.check_shift_changes()
    clock.now = HANDOFF
    real = OnCallSchedule.who_is_on_call

    def racing(self: OnCallSchedule, at: dt.datetime) -> list[Any]:
        users = real(self, at)
        # Another worker takes this handoff between our read of the state and our compare-and-set.
        OnCallSchedule.objects.filter(pk=self.pk).update(last_on_call=sorted(u.pk for u in users))
        return users

    monkeypatch.setattr(OnCallSchedule, "who_is_on_call", racing)
    assert "another check" in shift_changes.check_schedule(schedule_id=schedule.pk)
    assert _notices(schedule) == []


def test_schedules_without_the_flag_are_not_checked(schedule: OnCallSchedule, clock: Clock) -> None:
    OnCallSchedule.objects.filter(pk=schedule.pk).update(notify_shift_changes=False)
    shift_changes.check_shift_changes()
    clock.now = HANDOFF
    assert shift_changes.check_shift_changes() == 0
    assert _notices(schedule) == []
    assert OnCallSchedule.objects.get(pk=schedule.pk).last_on_call is None


def test_turning_notices_on_again_forgets_the_stale_state(schedule: OnCallSchedule, clock: Clock,
                                                          owner: Any) -> None:
    shift_changes.check_shift_changes()
    services.update_schedule(schedule=schedule, actor=owner, notify_shift_changes=False)
    clock.now = HANDOFF
    services.update_schedule(schedule=schedule, actor=owner, notify_shift_changes=True)
    assert shift_changes.check_shift_changes() == 0  # re-enabled after the handoff: no fake notice
    assert _notices(schedule) == []


# --- API -----------------------------------------------------------------------------------------------


def _schedule_body(**extra: Any) -> dict[str, Any]:
    return {"name": "Secondary", "time_zone": "UTC", **extra}


def test_the_api_turns_shift_notices_on_with_a_channel(org: Any, editor: Any, api_client: Any) -> None:
    channel = NotificationChannelFactory(organization=org)
    client = api_client(user=editor)
    response = client.post("/api/v1/schedules", _schedule_body(notify_shift_changes=True,
                                                                shift_change_channel=str(channel.public_id)),
                           format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["notify_shift_changes"] is True
    assert response.json()["shift_change_channel"] == str(channel.public_id)
    created = AuditEvent.objects.get(action="schedule.created")
    assert str(channel.public_id) in str(created.changes)
    response = client.patch(f"/api/v1/schedules/{response.json()['id']}", {"notify_shift_changes": False},
                            format="json")
    assert response.status_code == 200 and response.json()["notify_shift_changes"] is False


@pytest.mark.parametrize("which", ["managed", "foreign", "none"])
def test_the_api_refuses_a_channel_it_cannot_use(org: Any, other_org: Any, editor: Any, api_client: Any,
                                                 which: str) -> None:
    body = _schedule_body(notify_shift_changes=True)
    if which == "managed":
        body["shift_change_channel"] = str(NotificationChannelFactory(organization=org,
                                                                      managed_by="someapp").public_id)
    elif which == "foreign":
        body["shift_change_channel"] = str(NotificationChannelFactory(organization=other_org).public_id)
    response = api_client(user=editor).post("/api/v1/schedules", body, format="json")
    assert response.status_code == 400 and "shift_change_channel" in response.json()
    assert not OnCallSchedule.objects.filter(name="Secondary").exists()
