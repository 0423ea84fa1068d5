"""Alert storms: a chunk of rules is recorded set-based. Steady state costs a constant number of statements
and takes no rule lock; the first tick of a storm still writes one AlertEvent per transition and one
notification per group and channel, and every guard of the one-rule path still holds."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.alerts.evaluation import engine
from apps.alerts.models import Alert, AlertEvent, AlertGroup, Notification
from apps.alerts.services import bulk, lifecycle
from apps.alerts.services.lifecycle import resolve_alert
from apps.escalation.models import EscalationRun, RulePolicy
from tests.alerts.factories import NotificationChannelFactory
from tests.alerts.factories_evaluation import series_with
from tests.alerts.factories_lifecycle import rule_with_channels
from tests.escalation.factories_policies import EscalationPolicyFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_delivery(monkeypatch: Any) -> None:
    from apps.alerts import delivery

    monkeypatch.setattr(delivery, "_send", lambda ids: None)


def _now() -> dt.datetime:
    return timezone.now().replace(microsecond=0) - dt.timedelta(seconds=30)


def storm(org: Any, n: int, at: dt.datetime, first: int = 0, value: float = 95.0) -> list[int]:
    """``n`` rules, each watching its own host's ``cpu`` (which is ``value``), each with one channel."""
    channel = NotificationChannelFactory(organization=org)
    ids = []
    for i in range(first, first + n):
        series_with(org, "cpu", {"host": f"h{i}"}, at, [(5, value)])
        rule = rule_with_channels(org, channels=0, metric="cpu", critical=90, label_matchers=f'host="h{i}"',
                                  name=f"cpu-{i}")
        rule.channels.set([channel])
        ids.append(rule.pk)
    return ids


def _run(ids: list[int], at: dt.datetime, capture: Any) -> CaptureQueriesContext:
    with CaptureQueriesContext(connection) as queries, capture(execute=True):
        summary = engine.run_rules(ids, at=at)
    assert summary.errors == {} and len(summary.evaluated) == len(ids)
    return queries


def _locks(queries: CaptureQueriesContext) -> list[str]:
    """The rule-row locks taken (``lifecycle._lock_rules``)."""
    return [q["sql"] for q in queries.captured_queries
            if q["sql"].startswith('SELECT "alerts_alertrule"."id"') and "FOR NO KEY UPDATE" in q["sql"]]


def test_steady_state_of_many_firing_rules_costs_the_same_statements_as_a_few_and_no_rule_lock(
        org: Any, django_capture_on_commit_callbacks: Any) -> None:
    at = _now()
    few, many = storm(org, 3, at), storm(org, 30, at, first=3)
    _run(few, at, django_capture_on_commit_callbacks)
    _run(many, at, django_capture_on_commit_callbacks)
    assert Alert.objects.filter(state="firing").count() == 33
    later = at + dt.timedelta(seconds=10)
    small = _run(few, later, django_capture_on_commit_callbacks)
    large = _run(many, later, django_capture_on_commit_callbacks)
    # Reads, statement timeouts, the one alerts query, the set-based refresh and the schedule update.
    assert len(large.captured_queries) == len(small.captured_queries) <= 25
    assert _locks(large) == []
    assert set(Alert.objects.values_list("last_evaluated_at", flat=True)) == {later}
    assert AlertEvent.objects.count() == 33  # a refresh writes no event


def test_the_first_tick_of_a_storm_writes_one_event_per_transition_and_one_message_per_group(
        org: Any, django_capture_on_commit_callbacks: Any) -> None:
    at = _now()
    warm, few, many = storm(org, 1, at, first=40), storm(org, 3, at), storm(org, 30, at, first=3)
    # Process-wide caches (today's logs partition, settings) are filled by whichever run comes first in
    # this worker process: a throwaway storm first, so both measured runs find them warm.
    _run(warm, at, django_capture_on_commit_callbacks)
    small = _run(few, at, django_capture_on_commit_callbacks)
    large = _run(many, at, django_capture_on_commit_callbacks)
    # Opening 30 alerts (rows, groups, events, notifications, logs events) costs what opening 3 does.
    assert len(large.captured_queries) == len(small.captured_queries)
    assert len(_locks(large)) == 1  # the chunk's transitioning rules, locked in one statement
    alerts = list(Alert.objects.filter(rule_id__in=many))
    assert len(alerts) == 30 and {a.state for a in alerts} == {"firing"} and all(a.notified_firing for a in alerts)
    assert sorted(AlertEvent.objects.filter(alert__in=alerts).values_list("alert_id", flat=True)) == sorted(
        a.pk for a in alerts)
    groups = AlertGroup.objects.filter(rule_id__in=many)
    assert groups.count() == 30 and {g.state for g in groups} == {"firing"}
    sent = Notification.objects.filter(group__rule_id__in=many)
    assert sent.count() == 30 and {n.kind for n in sent} == {"firing"}
    assert sorted(sent.values_list("alert_id", flat=True)) == sorted(a.pk for a in alerts)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM logs_event WHERE organization_id = %s AND kind = 'alert_firing'", [org.pk])
        assert cursor.fetchone()[0] == 34  # the warm-up's, the 3 and the 30

    # Another tick with the same values: nothing new is told.
    _run(many, at + dt.timedelta(seconds=10), django_capture_on_commit_callbacks)
    assert Notification.objects.filter(group__rule_id__in=many).count() == 30
    assert AlertEvent.objects.filter(alert__in=alerts).count() == 30


def test_a_storm_clearing_tells_every_group_resolved_once(org: Any, django_capture_on_commit_callbacks: Any) -> None:
    at = _now()
    ids = storm(org, 10, at)
    _run(ids, at, django_capture_on_commit_callbacks)
    Alert.objects.update(value=None)
    for series_id in Alert.objects.values_list("series_id", flat=True):
        from tests.metrics.rollup_helpers import write

        write(series_id, [(at + dt.timedelta(seconds=5), 10.0)])
    _run(ids, at + dt.timedelta(seconds=10), django_capture_on_commit_callbacks)
    assert set(Alert.objects.values_list("state", flat=True)) == {"resolved"}
    assert Notification.objects.filter(kind="resolved").count() == 10
    assert AlertEvent.objects.filter(to_state="resolved").count() == 10
    assert not Alert.objects.filter(notified_firing=True).exists()


def test_one_rule_of_many_series_still_notifies_its_group_once(org: Any,
                                                               django_capture_on_commit_callbacks: Any) -> None:
    at = _now()
    for i in range(25):
        series_with(org, "cpu", {"host": f"h{i}"}, at, [(5, 95.0)])
    rule = rule_with_channels(org, channels=2, metric="cpu", critical=90)
    _run([rule.pk], at, django_capture_on_commit_callbacks)
    assert Alert.objects.filter(rule=rule, state="firing").count() == 25
    [group] = AlertGroup.objects.filter(rule=rule)
    notes = list(Notification.objects.filter(group=group))
    assert len(notes) == 2 and all(len(n.payload["alerts"]) == 25 for n in notes)


def test_a_refresh_whose_alert_another_worker_moved_meanwhile_is_skipped(
        org: Any, django_capture_on_commit_callbacks: Any, monkeypatch: Any) -> None:
    at = _now()
    [rule_id] = storm(org, 1, at)
    _run([rule_id], at, django_capture_on_commit_callbacks)
    alert = Alert.objects.get(rule_id=rule_id)
    real_apply = bulk.apply

    def racing(changes: Any, model: Any = Alert, **options: Any) -> set[int]:
        # Between the chunk's read and its write, a person resolves the alert (another worker's commit).
        if model is Alert and any(c.pk == alert.pk for c in changes):
            resolve_alert(alert=Alert.objects.get(pk=alert.pk), actor=None)
        return real_apply(changes, model, **options)

    monkeypatch.setattr(bulk, "apply", racing)
    later = at + dt.timedelta(seconds=10)
    _run([rule_id], later, django_capture_on_commit_callbacks)
    alert.refresh_from_db()
    # The refresh was planned against "firing"; its guard failed, so the resolved row stays as the person
    # left it (not re-stamped, not reopened by this stale evaluation).
    assert alert.state == "resolved" and alert.last_evaluated_at == at
    assert list(AlertEvent.objects.filter(alert=alert).values_list("to_state", flat=True).order_by("pk")) == [
        "firing", "resolved"]


def test_the_set_based_write_respects_the_state_and_severity_guards(org: Any) -> None:
    at = _now()
    [rule_id] = storm(org, 1, at)
    engine.run_rules([rule_id], at=at)
    alert = Alert.objects.get(rule_id=rule_id)
    changes = [bulk.Change(pk=alert.pk, old="firing", fields={"value": 1.0}, guard={"severity": "critical"}),
               bulk.Change(pk=alert.pk, old="pending", fields={"value": 2.0}, guard={}),
               bulk.Change(pk=alert.pk, old="firing", fields={"value": 3.0}, guard={"severity": "warning"})]
    assert bulk.apply(changes[1:]) == set()
    assert bulk.apply(changes[:1]) == {alert.pk}
    alert.refresh_from_db()
    assert alert.value == 1.0


def test_a_storm_hands_transitions_to_escalation_in_one_batch(org: Any,
                                                                django_capture_on_commit_callbacks: Any) -> None:
    at = _now()
    ids = storm(org, 12, at)
    RulePolicy.objects.create(organization=org, rule_id=ids[0], policy=EscalationPolicyFactory(organization=org))
    _run(ids, at, django_capture_on_commit_callbacks)
    [run] = EscalationRun.objects.all()
    assert run.alert.rule_id == ids[0] and run.status == "active"


def test_a_failing_rule_in_a_chunk_fails_alone(org: Any, django_capture_on_commit_callbacks: Any,
                                               monkeypatch: Any) -> None:
    at = _now()
    ids = storm(org, 4, at)
    real = lifecycle._transitions

    def broken(moving: Any, hosts: Any, at: dt.datetime) -> Any:
        if any(item.rule.pk == ids[1] for item in moving):
            raise RuntimeError("rule 1 is broken")
        return real(moving, hosts, at)

    monkeypatch.setattr(lifecycle, "_transitions", broken)
    with django_capture_on_commit_callbacks(execute=True):
        summary = engine.run_rules(ids, at=at)
    assert list(summary.errors) == [ids[1]] and sorted(summary.evaluated) == sorted(set(ids) - {ids[1]})
    assert Alert.objects.filter(state="firing").count() == 3


@pytest.mark.django_db(transaction=True)
def test_a_refresh_skips_a_row_another_transaction_holds_instead_of_waiting(org: Any) -> None:
    import threading

    from django.db import connections, transaction

    at = _now()
    [rule_id] = storm(org, 1, at)
    engine.run_rules([rule_id], at=at)
    alert = Alert.objects.get(rule_id=rule_id)
    refresh = [bulk.Change(pk=alert.pk, old="firing", fields={"value": 1.0}, guard={})]
    outcome: dict[str, Any] = {}

    def other_worker() -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SET lock_timeout = '5s'")
            outcome["locked"] = bulk.apply(refresh, skip_locked=True)
        finally:
            connections.close_all()

    with transaction.atomic():
        list(Alert.objects.select_for_update().filter(pk=alert.pk))  # a transition in progress holds the row
        thread = threading.Thread(target=other_worker)
        thread.start()
        thread.join(20)
    assert outcome["locked"] == set()
    assert bulk.apply(refresh, skip_locked=True) == {alert.pk}
