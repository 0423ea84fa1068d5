"""Group escalation in-process (steps run by calling the task's function, time moved by a fake clock): a
group route takes a group so one escalation pages for all its alerts (a storm of 50 pages once), first
match by position wins and anything else falls back to the rule's per-alert policy, acknowledging the
group (or each of its alerts) stands it down, the group resolving ends it, and stale steps do nothing."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from apps.alerts.models import Alert, Notification
from apps.alerts.services.lifecycle import acknowledge_alert, record_outcomes
from apps.audit.models import AuditEvent
from apps.escalation import engine, group_engine, group_services
from apps.escalation.choices import RunStatus
from apps.escalation.models import EscalationRun, GroupEscalationRun, OnCallAssignment
from apps.escalation.policy_services import StepData
from tests.alerts.factories import AlertRuleFactory
from tests.alerts.factories_lifecycle import breach, clear
from tests.escalation.engine_fixtures import (  # noqa: F401 (fixtures)
    Clock,
    clock_fixture,
    commit_fixture,
    steps_fixture,
)
from tests.escalation.factories_policies import StepRecorder, contact, policy_with_steps

pytestmark = pytest.mark.django_db




@pytest.fixture
def group_steps(monkeypatch: pytest.MonkeyPatch) -> StepRecorder:
    recorder = StepRecorder()
    monkeypatch.setattr(group_engine, "_enqueue", recorder)
    return recorder


def storm(rule: Any, commit: Callable, clock: Clock, hosts: int, **labels: str) -> list[Alert]:
    return commit(lambda: record_outcomes(rule=rule, outcomes=[breach(host=f"web-{n}", **labels)
                                                                for n in range(hosts)], at=clock(), complete=True))


def run_due(recorder: StepRecorder, commit: Callable) -> str:
    group_id, escalation_id, step_index, repeat = recorder.last()
    return commit(lambda: group_engine.run_group_step(group_id=group_id, escalation_id=escalation_id,
                                                      step_index=step_index, repeat=repeat))


def route(org: Any, policy: Any, name: str = "storage", position: int = 0, **fields: Any) -> Any:
    fields.setdefault("matchers", {"team": "storage"})
    return group_services.create_group_route(organization=org, name=name, policy=policy, actor=None,
                                             position=position, **fields)


@pytest.fixture
def alice(org: Any, owner: Any) -> Any:
    contact(org, owner)
    return owner


def test_a_storm_of_50_alerts_in_one_group_pages_once(org: Any, alice: Any, clock: Clock, steps: StepRecorder,
                                                      group_steps: StepRecorder, commit: Callable) -> None:
    policy = policy_with_steps(org, [StepData("notify_user", wait_seconds=300, users=[alice]),
                                     StepData("notify_user", users=[alice])])
    route(org, policy)
    rule = AlertRuleFactory(organization=org, group_by=["team"])
    alerts = storm(rule, commit, clock, 50, team="storage")
    assert len(alerts) == 50 and len({a.group_id for a in alerts}) == 1

    run = GroupEscalationRun.objects.get(group_id=alerts[0].group_id)
    assert run.status == RunStatus.ACTIVE and len(group_steps.sent) == 1  # one run, one first step
    assert steps.sent == [] and not EscalationRun.objects.exists()  # no per-alert escalation
    assert "step done" in run_due(group_steps, commit)
    [assignment] = OnCallAssignment.objects.all()
    assert (assignment.username, assignment.group_id) == ("alice", run.group_id)
    [page] = Notification.objects.filter(kind="escalation")
    assert len(page.payload["alerts"]) == 50 and page.payload["status"] == "firing"
    assert "/api/v1/escalation/links/" in page.payload["commonAnnotations"]["acknowledge_url"]
    assert AuditEvent.objects.filter(action="escalation.group_step").count() == 1

    # A 51st alert joining while the escalation runs is in the next page, not a page of its own.
    storm(rule, commit, clock, 51, team="storage")
    assert len(group_steps.sent) == 2  # still only the step 1 scheduled by step 0
    assert GroupEscalationRun.objects.get(pk=run.pk).active_escalation_id == run.active_escalation_id
    clock.advance(300)
    run_due(group_steps, commit)
    assert len(Notification.objects.filter(kind="escalation").latest("pk").payload["alerts"]) == 51
    assert OnCallAssignment.objects.count() == 2
    assert GroupEscalationRun.objects.get(pk=run.pk).status == RunStatus.ENDED  # every step done


def test_first_matching_route_wins_and_other_groups_fall_back_to_the_rules_policy(
        org: Any, alice: Any, clock: Clock, steps: StepRecorder, group_steps: StepRecorder,
        commit: Callable) -> None:
    from apps.escalation.models import RulePolicy

    first = policy_with_steps(org, [StepData("notify_user", users=[alice])], name="first")
    second = policy_with_steps(org, [StepData("notify_user", users=[alice])], name="second")
    per_alert = policy_with_steps(org, [StepData("notify_user", users=[alice])], name="per-alert")
    rule = AlertRuleFactory(organization=org, group_by=["team"])
    RulePolicy.objects.create(organization=org, rule=rule, policy=per_alert)
    route(org, second, name="catch-storage", position=5)
    route(org, first, name="storage-of-this-rule", position=1, rule=rule)
    route(org, first, name="other-rule-only", position=0, rule=AlertRuleFactory(organization=org),
          matchers={})

    [storage] = storm(rule, commit, clock, 1, team="storage")
    assert GroupEscalationRun.objects.get(group_id=storage.group_id).policy == first
    assert not EscalationRun.objects.filter(alert=storage).exists()

    [network] = commit(lambda: record_outcomes(rule=rule, outcomes=[breach(host="sw-1", team="network")],
                                               at=clock(), complete=False))
    assert not GroupEscalationRun.objects.filter(group_id=network.group_id).exists()
    assert EscalationRun.objects.get(alert=network).policy == per_alert  # the rule's policy, per alert


def test_acknowledging_every_alert_of_the_group_stands_it_down_and_resolving_ends_it(
        org: Any, alice: Any, clock: Clock, group_steps: StepRecorder, steps: StepRecorder,
        commit: Callable) -> None:
    policy = policy_with_steps(org, [StepData("notify_user", wait_seconds=60, users=[alice]),
                                     StepData("notify_user", users=[alice])])
    route(org, policy)
    rule = AlertRuleFactory(organization=org, group_by=["team"])
    first, second = storm(rule, commit, clock, 2, team="storage")
    run_due(group_steps, commit)
    commit(lambda: acknowledge_alert(alert=first, actor=alice))
    assert GroupEscalationRun.objects.get(group_id=first.group_id).status == RunStatus.ACTIVE  # one still fires
    commit(lambda: acknowledge_alert(alert=second, actor=alice))
    run = GroupEscalationRun.objects.get(group_id=first.group_id)
    assert run.status == RunStatus.ACKNOWLEDGED
    clock.advance(60)
    stale = group_steps.sent[-2][0]  # the step 1 scheduled before the acknowledgement
    assert "stale step" in commit(lambda: group_engine.run_group_step(
        group_id=stale[0], escalation_id=stale[1], step_index=stale[2], repeat=stale[3]))
    assert OnCallAssignment.objects.count() == 1

    commit(lambda: record_outcomes(rule=rule, outcomes=[clear(host="web-0", team="storage"),
                                                        clear(host="web-1", team="storage")],
                                   at=clock(), complete=True))
    assert set(Alert.objects.values_list("state", flat=True)) == {"resolved"}
    assert GroupEscalationRun.objects.get(pk=run.pk).status == RunStatus.ENDED


def test_acknowledge_group_acknowledges_every_firing_alert_once_and_is_audited(
        org: Any, alice: Any, clock: Clock, group_steps: StepRecorder, commit: Callable) -> None:
    policy = policy_with_steps(org, [StepData("notify_user", wait_seconds=60, users=[alice])],
                               ack_timeout_seconds=120)
    route(org, policy)
    rule = AlertRuleFactory(organization=org, group_by=["team"])
    alerts = storm(rule, commit, clock, 3, team="storage")
    run_due(group_steps, commit)
    group = alerts[0].group
    done = commit(lambda: group_services.acknowledge_group(group=group, actor=alice))
    assert len(done) == 3 and set(Alert.objects.values_list("state", flat=True)) == {"acknowledged"}
    run = GroupEscalationRun.objects.get(group=group)
    assert run.status == RunStatus.ACKNOWLEDGED
    assert run.next_step_at == clock() + dt.timedelta(seconds=120)  # the acknowledgement timeout is armed
    event = AuditEvent.objects.get(action="escalation.group_acknowledged")
    assert event.actor_user == alice and len(event.changes["alerts"][1]) == 3

    clock.advance(120)
    assert "step done" in run_due(group_steps, commit)  # timed out: the group escalates again
    assert OnCallAssignment.objects.count() == 2


def test_a_new_alert_firing_in_a_stood_down_group_escalates_again(
        org: Any, alice: Any, clock: Clock, group_steps: StepRecorder, commit: Callable) -> None:
    policy = policy_with_steps(org, [StepData("notify_user", wait_seconds=60, users=[alice])])
    route(org, policy)
    rule = AlertRuleFactory(organization=org, group_by=["team"])
    [first] = storm(rule, commit, clock, 1, team="storage")
    run_due(group_steps, commit)
    commit(lambda: group_services.acknowledge_group(group=first.group, actor=alice))
    before = GroupEscalationRun.objects.get(group=first.group).active_escalation_id
    clock.advance(10)
    storm(rule, commit, clock, 2, team="storage")  # web-1 joins, firing and unacknowledged
    run = GroupEscalationRun.objects.get(group=first.group)
    assert run.status == RunStatus.ACTIVE and run.active_escalation_id != before
    run_due(group_steps, commit)
    page = Notification.objects.filter(kind="escalation").latest("pk")
    assert [a["labels"]["host"] for a in page.payload["alerts"]] == ["web-1"]  # the unacknowledged one


def test_a_sweep_resends_an_overdue_group_step_once(org: Any, alice: Any, clock: Clock, group_steps: StepRecorder,
                                                    commit: Callable, settings: Any) -> None:
    settings.FIBERSTACK_ESCALATION_SWEEP_GRACE_SECONDS = 30
    route(org, policy_with_steps(org, [StepData("notify_user", users=[alice])]))
    storm(AlertRuleFactory(organization=org, group_by=["team"]), commit, clock, 1, team="storage")
    assert len(group_steps.sent) == 1
    clock.advance(31)
    assert group_engine.resend_overdue() == 1 and group_engine.resend_overdue() == 0
    assert len(group_steps.sent) == 2
    assert engine.resend_overdue() == 0  # the alert sweep leaves group runs alone
