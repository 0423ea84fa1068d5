"""The escalation engine in-process (steps run by calling the task's function, time moved by a fake
clock): routing, start/stand-down/end on alert transitions, on-call resolved at step time, suppression,
recurrence, repeats, the acknowledgement timeout, the compare-and-set on stale and duplicate steps."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from apps.alerts.choices import NotificationStatus
from apps.alerts.models import AlertEvent, Notification
from apps.alerts.services.lifecycle import acknowledge_alert, record_outcomes, resolve_alert
from apps.escalation import engine
from apps.escalation.choices import RunStatus
from apps.escalation.models import EscalationRun, OnCallAssignment
from apps.escalation.policy_services import StepData
from tests.alerts.factories import NotificationChannelFactory, SilenceFactory
from tests.alerts.factories_lifecycle import breach, clear
from tests.escalation.engine_fixtures import (  # noqa: F401 (fixtures)
    T0,
    Clock,
    clock_fixture,
    commit_fixture,
    steps_fixture,
)
from tests.escalation.factories import OnCallScheduleFactory, ScheduleLayerFactory, ScheduleOverrideFactory
from tests.escalation.factories_policies import StepRecorder, contact, policy_with_steps, routed_rule

pytestmark = pytest.mark.django_db



def fire(rule: Any, commit: Callable, clock: Clock, host: str = "web-1") -> Any:
    return commit(lambda: record_outcomes(rule=rule, outcomes=[breach(host=host)], at=clock(), complete=True))[0]


def run_due(steps: StepRecorder, commit: Callable) -> str:
    alert_id, escalation_id, step_index, repeat = steps.last()
    return commit(lambda: engine.run_step(alert_id=alert_id, escalation_id=escalation_id, step_index=step_index,
                                          repeat=repeat))


def paged(alert: Any) -> list[tuple[int, int, str]]:
    return list(OnCallAssignment.objects.filter(alert=alert).order_by("pk")
                .values_list("step_index", "repeat", "username"))


@pytest.fixture
def team(org: Any, owner: Any, editor: Any) -> Iterator[tuple[Any, Any]]:
    contact(org, owner)
    contact(org, editor)
    yield owner, editor


def test_an_unrouted_rule_does_not_escalate(org: Any, owner: Any, clock: Clock, steps: StepRecorder,
                                            commit: Callable) -> None:
    from tests.alerts.factories import AlertRuleFactory
    alert = fire(AlertRuleFactory(organization=org), commit, clock)
    assert not EscalationRun.objects.filter(alert=alert).exists() and steps.sent == []


def test_firing_starts_the_escalation_and_steps_page_in_order(org: Any, team: Any, clock: Clock,
                                                              steps: StepRecorder, commit: Callable) -> None:
    alice, erin = team
    policy = policy_with_steps(org, [StepData("notify_user", wait_seconds=60, users=[alice]),
                                     StepData("notify_user", users=[erin])])
    alert = fire(routed_rule(org, policy), commit, clock)

    run = EscalationRun.objects.get(alert=alert)
    assert run.status == RunStatus.ACTIVE and steps.sent[-1] == ([alert.pk, str(run.active_escalation_id), 0, 0],
                                                                 T0)
    assert "step done" in run_due(steps, commit)
    assert paged(alert) == [(0, 0, "alice")]
    assert steps.sent[-1][1] == T0 + dt.timedelta(seconds=60)  # the wait after step 0

    assert "not yet" in run_due(steps, commit)  # early copy: nothing
    clock.advance(60)
    run_due(steps, commit)
    assert paged(alert) == [(0, 0, "alice"), (1, 0, "erin")]
    assert EscalationRun.objects.get(alert=alert).status == RunStatus.ENDED
    pages = Notification.objects.filter(alert=alert, kind="escalation")
    assert pages.count() == 2
    annotations = pages.first().payload["alerts"][0]["annotations"]
    assert "/api/v1/escalation/links/" in annotations["acknowledge_url"] and annotations["resolve_url"]
    timeline = list(AlertEvent.objects.filter(alert=alert).values_list("message", flat=True))
    assert any(m.startswith("escalation started") for m in timeline)
    assert any(m.startswith("escalation step 1/2 notify_user: paged alice") for m in timeline)
    assert any(m.startswith("escalation step 2/2") for m in timeline)


def test_a_duplicate_or_stale_step_does_nothing(org: Any, team: Any, clock: Clock, steps: StepRecorder,
                                                commit: Callable) -> None:
    alice, _ = team
    policy = policy_with_steps(org, [StepData("notify_user", wait_seconds=60, users=[alice])], repeat_count=1)
    alert = fire(routed_rule(org, policy), commit, clock)
    first = steps.last()
    run_due(steps, commit)
    again = commit(lambda: engine.run_step(alert_id=first[0], escalation_id=first[1], step_index=0, repeat=0))
    assert "stale" in again
    assert "stale" in engine.run_step(alert_id=alert.pk, escalation_id="00000000-0000-0000-0000-000000000000",
                                      step_index=1, repeat=0)
    assert paged(alert) == [(0, 0, "alice")]


def test_repeats_run_the_steps_again_without_a_cap(org: Any, team: Any, clock: Clock, steps: StepRecorder,
                                                   commit: Callable) -> None:
    alice, _ = team
    policy = policy_with_steps(org, [StepData("notify_user", wait_seconds=10, users=[alice])], repeat_count=7)
    alert = fire(routed_rule(org, policy), commit, clock)
    for _ in range(8):
        run_due(steps, commit)
        clock.advance(10)
    assert paged(alert) == [(0, r, "alice") for r in range(8)]
    assert EscalationRun.objects.get(alert=alert).status == RunStatus.ENDED


def test_acknowledge_stops_the_next_step_and_cancels_delayed_pages(org: Any, owner: Any, editor: Any,
                                                                   clock: Clock, steps: StepRecorder,
                                                                   commit: Callable) -> None:
    contact(org, owner, kind="email")
    contact(org, owner, kind="webhook", delay=300)  # personal rule: email now, webhook in 5 minutes
    policy = policy_with_steps(org, [StepData("notify_user", wait_seconds=60, users=[owner]),
                                     StepData("notify_user", users=[editor])])
    alert = fire(routed_rule(org, policy), commit, clock)
    run_due(steps, commit)
    rows = list(Notification.objects.filter(alert=alert, kind="escalation").order_by("next_attempt_at"))
    assert [r.next_attempt_at - T0 for r in rows] == [dt.timedelta(0), dt.timedelta(seconds=300)]
    pending_step = steps.last()

    clock.advance(30)
    commit(lambda: acknowledge_alert(alert=alert, actor=owner))
    clock.advance(60)
    assert "stale" in commit(lambda: engine.run_step(alert_id=alert.pk, escalation_id=pending_step[1],
                                                     step_index=1, repeat=0))
    assert paged(alert) == [(0, 0, "alice")]
    rows[1].refresh_from_db()
    assert rows[1].status == NotificationStatus.SUPPRESSED  # the delayed webhook is never sent
    assert EscalationRun.objects.get(alert=alert).status == RunStatus.ACKNOWLEDGED


def test_the_acknowledgement_timeout_escalates_again(org: Any, team: Any, clock: Clock, steps: StepRecorder,
                                                     commit: Callable) -> None:
    alice, erin = team
    policy = policy_with_steps(org, [StepData("notify_user", wait_seconds=60, users=[alice]),
                                     StepData("notify_user", users=[erin])], ack_timeout_seconds=600)
    alert = fire(routed_rule(org, policy), commit, clock)
    run_due(steps, commit)
    commit(lambda: acknowledge_alert(alert=alert, actor=alice))
    timer = steps.sent[-1]
    assert timer[1] == T0 + dt.timedelta(seconds=600)
    clock.advance(600)
    run_due(steps, commit)
    assert paged(alert)[-1] == (0, 0, "alice")
    assert len(paged(alert)) == 2
    assert AlertEvent.objects.filter(alert=alert, message__startswith="acknowledgement timed out").count() == 1
    clock.advance(60)
    run_due(steps, commit)  # the re-escalation goes on while the alert stays acknowledged
    assert paged(alert)[-1] == (1, 0, "erin")


def test_resolve_ends_the_escalation(org: Any, team: Any, clock: Clock, steps: StepRecorder,
                                     commit: Callable) -> None:
    alice, erin = team
    policy = policy_with_steps(org, [StepData("notify_user", wait_seconds=60, users=[alice]),
                                     StepData("notify_user", users=[erin])])
    alert = fire(routed_rule(org, policy), commit, clock)
    run_due(steps, commit)
    commit(lambda: resolve_alert(alert=alert, actor=alice))
    clock.advance(60)
    assert "stale" in run_due(steps, commit)
    assert EscalationRun.objects.get(alert=alert).status == RunStatus.ENDED and len(paged(alert)) == 1


def test_recurrence_restarts_the_escalation_with_a_new_id(org: Any, team: Any, clock: Clock,
                                                          steps: StepRecorder, commit: Callable) -> None:
    alice, _ = team
    policy = policy_with_steps(org, [StepData("notify_user", wait_seconds=60, users=[alice])])
    rule = routed_rule(org, policy)
    alert = fire(rule, commit, clock)
    first_id = EscalationRun.objects.get(alert=alert).active_escalation_id
    run_due(steps, commit)
    clock.advance(5)
    commit(lambda: record_outcomes(rule=rule, outcomes=[clear()], at=clock(), complete=True))
    clock.advance(5)
    fire(rule, commit, clock)
    run = EscalationRun.objects.get(alert=alert)
    assert run.status == RunStatus.ACTIVE and run.active_escalation_id != first_id
    run_due(steps, commit)
    assert [p[2] for p in paged(alert)] == ["alice", "alice"]


def test_the_schedule_is_asked_who_is_on_call_at_step_time(org: Any, owner: Any, editor: Any, clock: Clock,
                                                           steps: StepRecorder, commit: Callable) -> None:
    contact(org, owner)
    contact(org, editor)
    schedule = OnCallScheduleFactory(organization=org, time_zone="UTC")
    ScheduleLayerFactory(schedule=schedule, priority=0, users=[owner])
    # From 12:01 erin covers: the second pass must page her, not whoever was on call when it fired.
    ScheduleOverrideFactory(schedule=schedule, user=editor, start=T0 + dt.timedelta(seconds=60),
                            end=T0 + dt.timedelta(hours=1))
    policy = policy_with_steps(org, [StepData("notify_schedule", wait_seconds=60, schedule=schedule)],
                               repeat_count=1)
    alert = fire(routed_rule(org, policy), commit, clock)
    run_due(steps, commit)
    clock.advance(60)
    run_due(steps, commit)
    rows = list(OnCallAssignment.objects.filter(alert=alert).order_by("pk"))
    assert [(r.username, r.on_call, r.schedule_id) for r in rows] == [
        ("alice", ["alice"], schedule.pk), ("erin", ["erin"], schedule.pk)]


def test_a_suppressed_alert_is_not_paged(org: Any, team: Any, clock: Clock, steps: StepRecorder,
                                         commit: Callable, monkeypatch: pytest.MonkeyPatch) -> None:
    from apps.alerts.suppression import Suppression
    alice, _ = team
    policy = policy_with_steps(org, [StepData("notify_user", users=[alice])])
    alert = fire(routed_rule(org, policy), commit, clock)
    monkeypatch.setattr(engine, "suppression_for",
                        lambda a, *, at: Suppression(kind="silence", reason="silenced by ops"))
    run_due(steps, commit)
    rows = Notification.objects.filter(alert=alert, kind="escalation")
    assert rows.count() == 1 and rows.get().status == NotificationStatus.SUPPRESSED
    assert OnCallAssignment.objects.get(alert=alert).suppressed is True
    assert AlertEvent.objects.filter(alert=alert, message__contains="suppressed (silenced by ops)").exists()


def test_a_real_silence_suppresses_the_page(org: Any, team: Any, clock: Clock, steps: StepRecorder,
                                            commit: Callable) -> None:
    alice, _ = team
    policy = policy_with_steps(org, [StepData("notify_user", users=[alice])])
    rule = routed_rule(org, policy)
    alert = fire(rule, commit, clock)
    SilenceFactory(organization=org, matchers=[{"name": "alertname", "op": "=", "value": rule.name}],
                   starts_at=T0 - dt.timedelta(minutes=1), ends_at=T0 + dt.timedelta(hours=1))
    run_due(steps, commit)
    assert set(Notification.objects.filter(alert=alert, kind="escalation").values_list("status", flat=True)) == {
        NotificationStatus.SUPPRESSED}


def test_a_channel_step_pages_the_channel(org: Any, clock: Clock, steps: StepRecorder, commit: Callable) -> None:
    channel = NotificationChannelFactory(organization=org)
    policy = policy_with_steps(org, [StepData("notify_channel", channels=[channel])])
    alert = fire(routed_rule(org, policy), commit, clock)
    run_due(steps, commit)
    assert list(Notification.objects.filter(alert=alert, kind="escalation").values_list("channel", flat=True)) \
        == [channel.pk]


def test_the_sweep_resends_an_overdue_step_once(org: Any, team: Any, clock: Clock, steps: StepRecorder,
                                                commit: Callable, settings: Any) -> None:
    settings.FIBERSTACK_ESCALATION_SWEEP_GRACE_SECONDS = 30
    alice, _ = team
    policy = policy_with_steps(org, [StepData("notify_user", users=[alice])])
    alert = fire(routed_rule(org, policy), commit, clock)
    sent = len(steps.sent)
    assert engine.resend_overdue() == 0  # not overdue yet
    clock.advance(31)
    assert engine.resend_overdue() == 1 and engine.resend_overdue() == 0  # claimed: once per grace period
    assert len(steps.sent) == sent + 1 and steps.sent[-1][0] == steps.sent[sent - 1][0]
    run_due(steps, commit)
    run_due(steps, commit)  # the original arriving late: nothing
    assert len(paged(alert)) == 1


def test_a_step_that_finds_an_unannounced_acknowledgement_stands_down(
        org: Any, team: Any, clock: Clock, steps: StepRecorder, commit: Callable) -> None:
    alice, erin = team
    policy = policy_with_steps(org, [StepData("notify_user", wait_seconds=60, users=[alice]),
                                     StepData("notify_user", users=[erin])])
    alert = fire(routed_rule(org, policy), commit, clock)
    run_due(steps, commit)
    # Acknowledged without the after-commit hook reaching the engine (another worker, not yet run).
    acknowledge_alert(alert=alert, actor=alice)
    clock.advance(60)
    assert "stood down" in run_due(steps, commit)
    assert paged(alert) == [(0, 0, "alice")]
    assert EscalationRun.objects.get(alert=alert).status == RunStatus.ACKNOWLEDGED


def test_a_link_acknowledges_a_re_escalating_alert_again(org: Any, team: Any, clock: Clock, steps: StepRecorder,
                                                         commit: Callable) -> None:
    from django.test import Client

    from apps.escalation.links import make_token
    alice, erin = team
    policy = policy_with_steps(org, [StepData("notify_user", wait_seconds=60, users=[alice]),
                                     StepData("notify_user", users=[erin])], ack_timeout_seconds=300)
    alert = fire(routed_rule(org, policy), commit, clock)
    run_due(steps, commit)
    commit(lambda: acknowledge_alert(alert=alert, actor=alice))
    clock.advance(300)
    run_due(steps, commit)  # the timeout: alice paged again, the run is active while the alert stays acknowledged
    assert EscalationRun.objects.get(alert=alert).status == RunStatus.ACTIVE
    token = make_token(alert_public_id=str(alert.public_id), user_id=erin.pk, action="acknowledge")
    response = commit(lambda: Client().post(f"/api/v1/escalation/links/{token}"))
    assert response.status_code == 200 and b"Acknowledged again" in response.content
    run = EscalationRun.objects.get(alert=alert)
    assert run.status == RunStatus.ACKNOWLEDGED and run.next_step_at == clock() + dt.timedelta(seconds=300)
    clock.advance(60)
    pending = [args for args, _ in steps.sent if args[1] != str(run.active_escalation_id)][-1]
    assert "stale" in commit(lambda: engine.run_step(alert_id=alert.pk, escalation_id=pending[1],
                                                     step_index=pending[2], repeat=pending[3]))
    assert [p[2] for p in paged(alert)] == ["alice", "alice"]


def test_a_repeated_firing_hook_never_restarts_the_same_occurrence(org: Any, team: Any, clock: Clock,
                                                                   steps: StepRecorder, commit: Callable) -> None:
    from apps.alerts.hooks import AlertTransition
    alice, _ = team
    policy = policy_with_steps(org, [StepData("notify_user", users=[alice])])
    alert = fire(routed_rule(org, policy), commit, clock)
    run_due(steps, commit)  # the only step: the run ends
    sent = len(steps.sent)
    repeated = AlertTransition(organization_id=org.pk, alert_id=alert.pk, group_id=alert.group_id,
                               rule_id=alert.rule_id, from_state="pending", to_state="firing", at=clock(),
                               actor_repr="system")
    commit(lambda: engine.consume(repeated))
    assert len(steps.sent) == sent and EscalationRun.objects.get(alert=alert).status == RunStatus.ENDED
