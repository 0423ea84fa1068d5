"""The escalation proof end to end: Debian's real Prometheus and Alertmanager fire into an integration
URL of the live server, the integration's rule (or a group route matching the group's labels) escalates
through a policy, and a REAL Celery worker runs
the step task and the delivery: the page arrives at the user's verified webhook contact method as an
Alertmanager v4 body, an OnCallAssignment records it, and when Prometheus stops firing the alert resolves,
the escalation ends and its next step (already queued) finds itself stale and pages nobody.

Skipped (naming the Debian package) where Prometheus or Alertmanager is not installed; failed under CI."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from apps.alerts.choices import AlertState
from apps.escalation.choices import RunStatus
from apps.escalation.group_services import create_group_route
from apps.escalation.models import EscalationRun, GroupEscalationRun, OnCallAssignment, RulePolicy
from apps.escalation.policy_services import StepData
from tests.alerts.factories_delivery import HttpReceiver, receiver_fixture  # noqa: F401 (fixture)
from tests.alerts.factories_inbound import make_integration
from tests.alerts.test_inbound_alertmanager import (
    ALERT,
    _programs,
    _wait_until,
    reload_prometheus,
    rules_yml,
    start_alertmanager,
    start_prometheus,
    wait_for_alert,
)
from tests.celery_worker import CeleryWorker, worker_factory_fixture  # noqa: F401 (fixtures)
from tests.conftest import AgentProcesses
from tests.escalation.factories_policies import contact, policy_with_steps

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True),
              pytest.mark.filterwarnings("ignore:task_always_eager has no effect on send_task")]

# Long enough for Prometheus -> Alertmanager -> FiberStack to resolve the alert before step 2 is due.
WAIT_AFTER_FIRST_STEP = 25


@pytest.mark.parametrize("routed_by", ["rule", "group-route"])
def test_alertmanager_alert_pages_through_a_real_worker_and_resolving_ends_the_escalation(
    routed_by: str, live_server: Any, org: Any, owner: Any, editor: Any, tmp_path: Path,
    agent_processes: AgentProcesses, receiver: HttpReceiver, worker_factory: Callable[..., CeleryWorker], settings: Any,
) -> None:
    prometheus, alertmanager = _programs()
    queue = f"fs-test-{uuid.uuid4().hex[:8]}"
    # Step tasks and deliveries -- those this process sends and those the worker sends -- go to the
    # worker's private queue, so nothing else consumes them.
    settings.FIBERSTACK_ESCALATION_QUEUE = settings.FIBERSTACK_DELIVERY_QUEUE = queue
    worker = worker_factory(queue, env={"FIBERSTACK_ESCALATION_QUEUE": queue, "FIBERSTACK_DELIVERY_QUEUE": queue})
    method = contact(org, owner, kind="webhook", url=receiver.url)  # verified (an admin vouched for it)
    contact(org, editor, kind="webhook", url=receiver.url + "/erin")
    policy = policy_with_steps(org, [StepData("notify_user", wait_seconds=WAIT_AFTER_FIRST_STEP, users=[owner]),
                                     StepData("notify_user", users=[editor])], name="storage-oncall")
    integration, token = make_integration(org, name="team-prometheus")
    if routed_by == "rule":
        RulePolicy.objects.create(organization=org, rule=integration.rule, policy=policy)
    else:  # the group's labels (Prometheus's, grouped by the integration) match a group route
        create_group_route(organization=org, name="storage", matchers={"team": "storage"}, policy=policy,
                           actor=None)
    worker.wait_ready()

    url = f"{live_server.url}/api/v1/integrations/{integration.public_id}/alertmanager"
    am_port = start_alertmanager(agent_processes, tmp_path, alertmanager, url, token)
    prom_port = start_prometheus(agent_processes, tmp_path, prometheus, am_port)

    opened = wait_for_alert(agent_processes, integration, AlertState.FIRING)
    receiver.wait_for(1, timeout=60)  # the worker ran step 1 and delivered its page
    [page] = receiver.requests
    body = page.json()
    assert page.path == "/hook"
    assert body["version"] == "4" and body["status"] == "firing" and body["receiver"] == f"contact:{method.public_id}"
    [entry] = body["alerts"]
    assert entry["labels"]["alertname"] == ALERT and entry["labels"]["team"] == "storage"
    assert entry["annotations"]["escalation"] == "step 1 of 2, pass 1"
    assert "/api/v1/escalation/links/" in entry["annotations"]["acknowledge_url"]
    [assignment] = OnCallAssignment.objects.filter(alert=opened)
    assert (assignment.username, assignment.step_index, assignment.reason) == ("alice", 0, "notify_user")
    assert assignment.group_id == (opened.group_id if routed_by == "group-route" else None)
    assert "step done" in worker.log(100_000)

    rules_yml(tmp_path / "rules.yml", firing=False)
    reload_prometheus(prom_port)
    wait_for_alert(agent_processes, integration, AlertState.RESOLVED)
    def ended() -> bool:
        if routed_by == "rule":
            return EscalationRun.objects.get(alert=opened).status == RunStatus.ENDED
        return GroupEscalationRun.objects.get(group_id=opened.group_id).status == RunStatus.ENDED

    _wait_until(agent_processes, ended, "the escalation ended by the resolved hook")
    # Step 2 was queued with its eta before the alert resolved: it arrives and must do nothing.
    worker.wait_for(lambda: "stale step 1/0" in worker.log(1_000_000), timeout=WAIT_AFTER_FIRST_STEP + 30)
    assert list(OnCallAssignment.objects.filter(alert=opened).values_list("username", flat=True)) == ["alice"]
    assert len(receiver.requests) == 1 and "Traceback" not in worker.log(1_000_000)
    agent_processes.stop_all()
    assert "level=error" not in (tmp_path / "alertmanager.log").read_text()
