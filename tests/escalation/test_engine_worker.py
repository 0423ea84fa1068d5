"""The escalation engine with real Celery worker processes (broker: the test Redis, database: the test
database): steps run at their time on the worker, an acknowledgement stops the next step, its timeout
re-escalates, repeats run, two workers racing on duplicated step messages page each step once, and a
worker killed while holding the next step's message loses nothing (the sweep re-sends it, once)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from django.utils import timezone

from apps.alerts.models import AlertEvent, Notification
from apps.alerts.services.lifecycle import acknowledge_alert, record_outcomes
from apps.escalation.choices import LIVE_STATUSES, RunStatus
from apps.escalation.engine import RUN_STEP_TASK, SWEEP_TASK
from apps.escalation.models import EscalationRun, OnCallAssignment
from apps.escalation.policy_services import StepData
from fiberstack.celery import app
from tests.alerts.factories_lifecycle import breach
from tests.celery_worker import CeleryWorker, worker_factory_fixture  # noqa: F401 (fixtures)
from tests.escalation.factories_policies import contact, policy_with_steps, routed_rule

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True),
              pytest.mark.filterwarnings("ignore:task_always_eager has no effect on send_task")]


def fire(rule: Any, host: str = "web-1") -> Any:
    return record_outcomes(rule=rule, outcomes=[breach(host=host)], at=timezone.now(), complete=True)[0]


def paged(alert: Any) -> list[tuple[int, int, str]]:
    return list(OnCallAssignment.objects.filter(alert=alert).order_by("at", "pk")
                .values_list("step_index", "repeat", "username"))


@pytest.fixture
def team(org: Any, owner: Any, editor: Any) -> tuple[Any, Any]:
    contact(org, owner)
    contact(org, editor)
    return owner, editor


@pytest.fixture
def queue_for(settings: Any) -> Callable[[CeleryWorker], None]:
    """Send this process's step tasks (the first step, the ack timer) to the worker's private queue."""
    def use(worker: CeleryWorker) -> None:
        settings.FIBERSTACK_ESCALATION_QUEUE = worker.queue
    return use


def test_acknowledge_stops_the_next_step(org: Any, team: Any, worker_factory: Callable[..., CeleryWorker],
                                         queue_for: Callable) -> None:
    alice, erin = team
    worker = worker_factory()
    queue_for(worker)
    policy = policy_with_steps(org, [StepData("notify_user", wait_seconds=3, users=[alice]),
                                     StepData("notify_user", users=[erin])])
    alert = fire(routed_rule(org, policy))
    worker.wait_for(lambda: paged(alert) == [(0, 0, "alice")])
    acknowledge_alert(alert=alert, actor=alice)
    # The step-1 task still arrives at its time and must find itself stale.
    worker.wait_for(lambda: "stale step 1/0" in worker.log(100_000), timeout=30)
    assert paged(alert) == [(0, 0, "alice")]
    assert EscalationRun.objects.get(alert=alert).status == RunStatus.ACKNOWLEDGED


def test_the_acknowledgement_timeout_re_escalates(org: Any, team: Any, worker_factory: Callable[..., CeleryWorker],
                                                  queue_for: Callable) -> None:
    alice, _ = team
    worker = worker_factory()
    queue_for(worker)
    policy = policy_with_steps(org, [StepData("notify_user", wait_seconds=60, users=[alice])],
                               ack_timeout_seconds=2)
    alert = fire(routed_rule(org, policy))
    worker.wait_for(lambda: len(paged(alert)) == 1)
    acknowledge_alert(alert=alert, actor=alice)
    acked = time.monotonic()
    worker.wait_for(lambda: len(paged(alert)) == 2, timeout=30)
    assert time.monotonic() - acked >= 1.5  # not before the timeout
    assert AlertEvent.objects.filter(alert=alert, message__startswith="acknowledgement timed out").count() == 1
    alert.refresh_from_db()
    # The one-step policy ran out again; the alert stays acknowledged (a new acknowledgement re-arms it).
    assert alert.state == "acknowledged" and EscalationRun.objects.get(alert=alert).status == RunStatus.ENDED


def test_repeats_page_again_until_the_count_is_used_up(org: Any, team: Any,
                                                       worker_factory: Callable[..., CeleryWorker],
                                                       queue_for: Callable) -> None:
    alice, _ = team
    worker = worker_factory()
    queue_for(worker)
    policy = policy_with_steps(org, [StepData("notify_user", wait_seconds=1, users=[alice])], repeat_count=3)
    alert = fire(routed_rule(org, policy))
    worker.wait_for(lambda: EscalationRun.objects.get(alert=alert).status == RunStatus.ENDED, timeout=60)
    assert paged(alert) == [(0, r, "alice") for r in range(4)]
    assert Notification.objects.filter(alert=alert, kind="escalation").count() == 4


def test_two_workers_racing_on_duplicated_steps_page_each_step_once(
        org: Any, team: Any, worker_factory: Callable[..., CeleryWorker], queue_for: Callable) -> None:
    alice, erin = team
    first = worker_factory(name="alpha", env={"FIBERSTACK_ESCALATION_SWEEP_GRACE_SECONDS": "0"})
    second = worker_factory(name="beta", env={"FIBERSTACK_ESCALATION_SWEEP_GRACE_SECONDS": "0"})
    first.wait_ready()
    second.wait_ready()
    queue_for(first)
    policy = policy_with_steps(org, [StepData("notify_user", wait_seconds=1, users=[alice]),
                                     StepData("notify_user", wait_seconds=1, users=[erin])], repeat_count=1)
    rule = routed_rule(org, policy)
    alerts = record_outcomes(rule=rule, outcomes=[breach(host=f"web-{n}") for n in range(6)], at=timezone.now(),
                             complete=True)
    assert len(alerts) == 6

    def hammer() -> bool:
        # Every live run's current step is sent twice more, and sweeps race them (grace 0).
        for alert_id, escalation_id, step, repeat in EscalationRun.objects.filter(status__in=LIVE_STATUSES) \
                .values_list("alert_id", "active_escalation_id", "step_index", "repeat"):
            for _ in range(2):
                app.send_task(RUN_STEP_TASK, args=[alert_id, str(escalation_id), step, repeat], queue=first.queue)
        app.send_task(SWEEP_TASK, queue=first.queue)
        time.sleep(0.1)
        return not EscalationRun.objects.filter(status__in=LIVE_STATUSES).exists()

    first.wait_for(hammer, timeout=90)
    time.sleep(1.5)  # stragglers run and must find nothing to do
    expected = [(0, 0, "alice"), (1, 0, "erin"), (0, 1, "alice"), (1, 1, "erin")]
    for alert in alerts:
        assert paged(alert) == expected
    counts = Counter(Notification.objects.filter(alert__in=alerts, kind="escalation").values_list("alert", flat=True))
    assert set(counts.values()) == {4} and len(counts) == 6
    logs = first.log(1_000_000) + second.log(1_000_000)
    assert "Traceback" not in logs
    assert "stale step" in logs  # duplicates did arrive, and did nothing
    assert "step done" in first.log(1_000_000) and "step done" in second.log(1_000_000), \
        "both workers must have performed steps for this to be a race"


def test_a_worker_killed_holding_the_next_step_loses_nothing(
        org: Any, team: Any, worker_factory: Callable[..., CeleryWorker], queue_for: Callable) -> None:
    alice, erin = team
    env = {"FIBERSTACK_ESCALATION_SWEEP_GRACE_SECONDS": "1"}
    doomed = worker_factory(name="doomed", env=env)
    queue_for(doomed)
    policy = policy_with_steps(org, [StepData("notify_user", wait_seconds=4, users=[alice]),
                                     StepData("notify_user", users=[erin])])
    alert = fire(routed_rule(org, policy))
    doomed.wait_for(lambda: paged(alert) == [(0, 0, "alice")])
    # The step-1 message (eta +4 s) is in the doomed worker's hands, unacknowledged, when it dies.
    doomed.wait_for(lambda: doomed.log(100_000).count(f"Task {RUN_STEP_TASK}[") >= 3, timeout=30)
    doomed.stop(kill=True)

    rescuer = worker_factory(name="rescuer", env=env)
    rescuer.wait_ready()

    def swept() -> bool:  # beat would send this every 15 s; here every half second
        app.send_task(SWEEP_TASK, queue=rescuer.queue)
        time.sleep(0.5)
        return EscalationRun.objects.get(alert=alert).status == RunStatus.ENDED

    rescuer.wait_for(swept, timeout=60)
    time.sleep(1)
    assert paged(alert) == [(0, 0, "alice"), (1, 0, "erin")]
    assert Notification.objects.filter(alert=alert, kind="escalation").count() == 2
    assert "step done" in rescuer.log(100_000)


def test_a_storm_in_one_routed_group_pages_once_on_a_real_worker(
        org: Any, team: Any, worker_factory: Callable[..., CeleryWorker], queue_for: Callable) -> None:
    from apps.alerts.models import Alert
    from apps.escalation.group_services import acknowledge_group, create_group_route
    from apps.escalation.models import GroupEscalationRun
    from tests.alerts.factories import AlertRuleFactory

    alice, erin = team
    worker = worker_factory()
    queue_for(worker)
    policy = policy_with_steps(org, [StepData("notify_user", wait_seconds=3, users=[alice]),
                                     StepData("notify_user", users=[erin])])
    create_group_route(organization=org, name="storage", matchers={"team": "storage"}, policy=policy, actor=None)
    rule = AlertRuleFactory(organization=org, group_by=["team"])
    alerts = record_outcomes(rule=rule, outcomes=[breach(host=f"web-{n}", team="storage") for n in range(50)],
                             at=timezone.now(), complete=True)
    group_id = alerts[0].group_id
    worker.wait_for(lambda: OnCallAssignment.objects.filter(group_id=group_id).count() == 1)
    acknowledge_group(group=Alert.objects.get(pk=alerts[0].pk).group, actor=alice)
    worker.wait_for(lambda: "stale step 1/0" in worker.log(100_000), timeout=30)  # step 2 found itself stale
    assert list(OnCallAssignment.objects.values_list("username", flat=True)) == ["alice"]
    [page] = Notification.objects.filter(kind="escalation")
    assert len(page.payload["alerts"]) == 50
    assert GroupEscalationRun.objects.get(group_id=group_id).status == RunStatus.ACKNOWLEDGED
    assert not EscalationRun.objects.exists()  # no alert escalated on its own
