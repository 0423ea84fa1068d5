"""Schedule services: validation, layer replacement, audit in the same transaction, and the DB-loading
wrappers around the pure on-call functions (departed members become gaps)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError

from apps.audit.models import AuditEvent
from apps.escalation import services
from apps.escalation.models import CalendarFeed, OnCallSchedule, ScheduleLayer, ScheduleOverride
from apps.escalation.services import LayerData
from apps.organizations.models import Membership
from tests.escalation.factories import OnCallScheduleFactory, ScheduleLayerFactory

pytestmark = pytest.mark.django_db


def Z(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def _daily(*members, **kwargs) -> LayerData:
    return LayerData(rotation="daily", start_date=dt.date(2026, 3, 27), handoff_time=dt.time(9),
                     members=list(members), **kwargs)


def test_create_schedule_writes_layers_and_one_audit_event(org, owner, editor):
    schedule = services.create_schedule(organization=org, name=" Primary ", time_zone="Europe/Berlin",
                                        layers=[_daily(owner, editor)], actor=owner)
    assert schedule.name == "Primary"
    layer = schedule.layers.get()
    assert (layer.priority, layer.rotation, layer.shift_seconds) == (0, "daily", None)
    assert [m.user for m in layer.memberships.order_by("position")] == [owner, editor]
    event = AuditEvent.objects.get(action="schedule.created")
    assert event.organization == org and event.actor_user == owner
    assert event.changes["layers"][1][0]["members"] == ["alice", "erin"]


def test_who_is_on_call_wrapper_loads_the_schedule(org, owner, editor):
    schedule = services.create_schedule(organization=org, name="Primary", time_zone="Europe/Berlin",
                                        layers=[_daily(owner, editor)], actor=owner)
    assert schedule.who_is_on_call(Z("2026-03-29T06:59")) == [editor]
    assert schedule.who_is_on_call(Z("2026-03-29T07:00")) == [owner]  # 09:00 CEST


def test_members_outside_the_organization_are_refused_by_name(org, owner, other_org_user):
    with pytest.raises(ValidationError) as caught:
        services.create_schedule(organization=org, name="Primary", time_zone="UTC",
                                 layers=[_daily(owner, other_org_user)], actor=owner)
    assert "charlie" in str(caught.value)
    assert not OnCallSchedule.objects.exists()
    assert not AuditEvent.objects.filter(action="schedule.created").exists()


@pytest.mark.parametrize(("layer", "message"), [
    (LayerData(rotation="custom", start_date=dt.date(2026, 1, 1), handoff_time=dt.time(9), members=[]), "member"),
    (LayerData(rotation="daily", start_date=dt.date(2026, 1, 1), handoff_time=dt.time(9), members=["OWNER"],
               restrictions=[{"days": ["xyz"], "start": "09:00", "end": "17:00"}]), "days"),
])
def test_bad_layers_are_refused(org, owner, layer, message):
    layer = LayerData(**{**layer.__dict__, "members": [owner] if layer.members else []})
    with pytest.raises(ValidationError, match=message):
        services.create_schedule(organization=org, name="x", time_zone="UTC", layers=[layer], actor=owner)


def test_custom_rotation_needs_a_shift_length(org, owner):
    layer = LayerData(rotation="custom", start_date=dt.date(2026, 1, 1), handoff_time=dt.time(9), members=[owner])
    with pytest.raises(ValidationError, match="shift_seconds"):
        services.create_schedule(organization=org, name="x", time_zone="UTC", layers=[layer], actor=owner)


def test_unknown_time_zone_is_refused(org, owner):
    with pytest.raises(ValidationError, match="time zone"):
        services.create_schedule(organization=org, name="x", time_zone="Mars/Olympus", actor=owner)


def test_update_schedule_replaces_layers_and_audits_the_diff(org, owner, editor):
    schedule = services.create_schedule(organization=org, name="Primary", time_zone="UTC",
                                        layers=[_daily(owner)], actor=owner)
    services.update_schedule(schedule=schedule, actor=editor, time_zone="America/New_York",
                             layers=[_daily(editor), _daily(owner, priority=7)])
    schedule.refresh_from_db()
    assert schedule.time_zone == "America/New_York"
    assert list(schedule.layers.values_list("priority", flat=True)) == [0, 7]
    event = AuditEvent.objects.get(action="schedule.updated")
    assert event.changes["time_zone"] == ["UTC", "America/New_York"]
    assert event.actor_user == editor


def test_update_that_fails_validation_changes_nothing(org, owner, other_org_user):
    schedule = services.create_schedule(organization=org, name="Primary", time_zone="UTC",
                                        layers=[_daily(owner)], actor=owner)
    with pytest.raises(ValidationError):
        services.update_schedule(schedule=schedule, actor=owner, name="Renamed", layers=[_daily(other_org_user)])
    schedule.refresh_from_db()
    assert schedule.name == "Primary"
    assert [m.user for m in schedule.layers.get().memberships.all()] == [owner]


def test_delete_schedule_is_audited_with_its_layers(org, owner):
    schedule = services.create_schedule(organization=org, name="Primary", time_zone="UTC",
                                        layers=[_daily(owner)], actor=owner)
    services.delete_schedule(schedule=schedule, actor=owner)
    assert not ScheduleLayer.objects.exists()
    event = AuditEvent.objects.get(action="schedule.deleted")
    assert event.changes["layers"][0][0]["members"] == ["alice"]


def test_override_beats_the_layers_and_is_audited(org, owner, editor):
    schedule = services.create_schedule(organization=org, name="Primary", time_zone="UTC",
                                        layers=[_daily(owner)], actor=owner)
    override = services.create_override(schedule=schedule, user=editor, start=Z("2026-05-01T10:00"),
                                        end=Z("2026-05-01T12:00"), actor=owner)
    assert schedule.who_is_on_call(Z("2026-05-01T11:00")) == [editor]
    assert schedule.who_is_on_call(Z("2026-05-01T12:00")) == [owner]
    assert override.organization == org and override.created_by == owner
    services.delete_override(override=override, actor=owner)
    assert schedule.who_is_on_call(Z("2026-05-01T11:00")) == [owner]
    assert list(AuditEvent.objects.filter(action__startswith="schedule.override").values_list("action", flat=True)
                .order_by("pk")) == ["schedule.override_created", "schedule.override_deleted"]


def test_override_needs_a_member_and_a_positive_range(org, owner, other_org_user):
    schedule = OnCallScheduleFactory(organization=org)
    with pytest.raises(ValidationError, match="charlie"):
        services.create_override(schedule=schedule, user=other_org_user, start=Z("2026-05-01T10:00"),
                                 end=Z("2026-05-01T12:00"), actor=owner)
    with pytest.raises(ValidationError, match="end after"):
        services.create_override(schedule=schedule, user=owner, start=Z("2026-05-01T10:00"),
                                 end=Z("2026-05-01T10:00"), actor=owner)
    assert not ScheduleOverride.objects.exists()


def test_a_member_who_left_is_never_on_call_and_the_rotation_does_not_shift(org, owner, editor, member_ro):
    schedule = OnCallScheduleFactory(organization=org, time_zone="UTC")
    ScheduleLayerFactory(schedule=schedule, priority=0, users=[member_ro])
    ScheduleLayerFactory(schedule=schedule, priority=1, users=[owner, editor], start_date=dt.date(2026, 1, 1))
    Membership.objects.filter(user=editor).delete()
    assert schedule.who_is_on_call(Z("2026-01-01T12:00")) == [owner]
    assert schedule.who_is_on_call(Z("2026-01-02T12:00")) == [member_ro]  # editor's turn: the lower layer
    assert schedule.who_is_on_call(Z("2026-01-03T12:00")) == [owner]


def test_final_schedule_wrapper_includes_only_overrides_in_range(org, owner, editor):
    schedule = OnCallScheduleFactory(organization=org, time_zone="UTC")
    ScheduleLayerFactory(schedule=schedule, priority=0, users=[owner])
    services.create_override(schedule=schedule, user=editor, start=Z("2026-05-01T10:00"),
                             end=Z("2026-05-01T12:00"), actor=owner)
    shifts = schedule.final_schedule(Z("2026-05-01T00:00"), Z("2026-05-02T00:00"))
    assert [(s.user, s.source) for s in shifts] == [(owner, "layer:0"), (editor, "override"), (owner, "layer:0")]


def test_new_calendar_feed_revokes_the_previous_one(org, owner):
    first = services.create_calendar_feed(organization=org, user=owner, actor=owner)
    second = services.create_calendar_feed(organization=org, user=owner, actor=owner)
    first.refresh_from_db()
    assert first.revoked_at is not None and second.revoked_at is None
    services.revoke_calendar_feed(feed=second, actor=owner)
    services.revoke_calendar_feed(feed=second, actor=owner)  # twice: one event
    assert CalendarFeed.objects.filter(revoked_at__isnull=True).count() == 0
    assert AuditEvent.objects.filter(action="schedule.calendar_feed_revoked").count() == 2


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_new_links_leave_exactly_one_active_feed(org, owner):
    """Both requests succeed (no IntegrityError from the one-active-feed constraint): the membership row
    lock makes the second wait, then revoke the first's feed."""
    import threading

    from django.db import connection

    barrier, errors = threading.Barrier(2), []

    def new_link() -> None:
        try:
            barrier.wait()
            services.create_calendar_feed(organization=org, user=owner, actor=owner)
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=new_link) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert CalendarFeed.objects.count() == 2
    assert CalendarFeed.objects.filter(revoked_at__isnull=True).count() == 1
