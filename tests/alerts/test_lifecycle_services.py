"""acknowledge_alert / resolve_alert, and what every transition does after commit: the live update, the logs
event (node_down / node_up for the host-down rule) and the FIBERSTACK_ALERT_CONSUMERS hook."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from django.db import connection
from django.test import override_settings

from apps.alerts import hooks, live
from apps.alerts.choices import AlertState
from apps.alerts.models import Alert
from apps.alerts.services.lifecycle import AlertStateError, acknowledge_alert, record_outcomes, resolve_alert
from apps.audit.models import AuditEvent
from tests.alerts.factories_lifecycle import at, breach, clear, rule_with_channels

pytestmark = pytest.mark.django_db

SEEN: list[hooks.AlertTransition] = []
RECORDING = "tests.alerts.test_lifecycle_services.record"
FAILING = "tests.alerts.test_lifecycle_services.explode"


def record(transition: hooks.AlertTransition) -> None:
    SEEN.append(transition)


def explode(transition: hooks.AlertTransition) -> None:
    raise RuntimeError("consumer bug")


@pytest.fixture(autouse=True)
def _seen() -> Any:
    SEEN.clear()
    yield
    SEEN.clear()


@pytest.fixture(autouse=True)
def _no_delivery(monkeypatch: Any) -> None:
    from apps.alerts import delivery

    monkeypatch.setattr(delivery, "_send", lambda ids: None)


@pytest.fixture
def broadcasts(monkeypatch: Any) -> list[tuple[int, list[dict[str, Any]]]]:
    sent: list[tuple[int, list[dict[str, Any]]]] = []
    monkeypatch.setattr(live, "broadcast_alerts_update", lambda org_id, alerts: sent.append((org_id, alerts)))
    return sent


def log_events(org: Any) -> list[tuple[str, str, str]]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT kind, host, title FROM logs_event WHERE organization_id = %s ORDER BY id", [org.pk])
        return list(cursor.fetchall())


def firing_alert(org: Any, **rule_fields: Any) -> Alert:
    rule = rule_with_channels(org, **rule_fields)
    record_outcomes(rule=rule, outcomes=[breach()], at=at(0), complete=True)
    return Alert.objects.get(rule=rule)


def test_acknowledge_records_who_the_timeline_and_the_audit_log(org, editor):
    alert = firing_alert(org)
    acknowledge_alert(alert=alert, actor=editor)
    alert.refresh_from_db()
    assert alert.state == AlertState.ACKNOWLEDGED and alert.acknowledged_by == editor
    assert alert.acknowledged_at is not None
    event = alert.events.order_by("pk").last()
    assert (event.from_state, event.to_state, event.actor_type, event.actor_repr) == (
        "firing", "acknowledged", "user", "erin")
    audit = AuditEvent.objects.get(action="alert.acknowledged")
    assert audit.actor_user_id == editor.pk and audit.object_id == str(alert.public_id)
    assert audit.changes == {"state": ["firing", "acknowledged"]} and audit.organization_id == org.pk


def test_a_token_may_acknowledge_and_resolve_and_is_named(org, make_token):
    token, _ = make_token("config")
    alert = firing_alert(org)
    acknowledge_alert(alert=alert, actor=token)
    resolve_alert(alert=alert, actor=token)
    alert.refresh_from_db()
    assert alert.state == AlertState.RESOLVED and alert.acknowledged_by is None
    assert {e.actor_type for e in alert.events.exclude(actor_type="system")} == {"token"}
    assert AuditEvent.objects.filter(action__in=["alert.acknowledged", "alert.resolved"],
                                     actor_token_id=token.pk).count() == 2


@pytest.mark.parametrize("state", ["pending", "acknowledged", "resolved"])
def test_only_a_firing_alert_can_be_acknowledged(org, owner, state):
    alert = firing_alert(org)
    Alert.objects.filter(pk=alert.pk).update(state=state)
    with pytest.raises(AlertStateError, match=f"The alert is {state}") as error:
        acknowledge_alert(alert=alert, actor=owner)
    assert error.value.state == state
    assert not AuditEvent.objects.filter(action="alert.acknowledged").exists()


def test_a_stale_instance_cannot_acknowledge_twice(org, owner, editor):
    alert = firing_alert(org)
    stale = Alert.objects.get(pk=alert.pk)
    acknowledge_alert(alert=alert, actor=owner)
    with pytest.raises(AlertStateError):
        acknowledge_alert(alert=stale, actor=editor)
    assert Alert.objects.get(pk=alert.pk).acknowledged_by == owner
    assert alert.events.filter(to_state="acknowledged").count() == 1


def test_resolve_closes_an_open_alert_and_refuses_a_resolved_one(org, owner):
    alert = firing_alert(org)
    resolve_alert(alert=alert, actor=owner)
    alert.refresh_from_db()
    assert alert.state == AlertState.RESOLVED and alert.resolved_at is not None
    assert AuditEvent.objects.filter(action="alert.resolved", actor_user=owner).count() == 1
    with pytest.raises(AlertStateError, match="only an open alert can be resolved"):
        resolve_alert(alert=alert, actor=owner)


def test_a_manually_resolved_alert_that_still_breaches_recurs(org, owner):
    alert = firing_alert(org)
    resolve_alert(alert=alert, actor=owner)
    record_outcomes(rule=alert.rule, outcomes=[breach()], at=at(20), complete=True)
    alert.refresh_from_db()
    assert alert.state == AlertState.FIRING and alert.started_at == at(20)


# After commit --------------------------------------------------------------------------------------------


@override_settings(FIBERSTACK_ALERT_CONSUMERS=[FAILING, RECORDING])
def test_transitions_reach_live_logs_and_hooks_only_after_commit(org, owner, broadcasts, caplog,
                                                                 django_capture_on_commit_callbacks):
    rule = rule_with_channels(org, name="cpu")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        record_outcomes(rule=rule, outcomes=[breach(host="web-1")], at=at(0), complete=True)
    assert broadcasts == [] and SEEN == [] and log_events(org) == []
    for callback in callbacks:
        callback()
    alert = Alert.objects.get(rule=rule)
    [(org_id, [payload])] = broadcasts
    assert org_id == org.pk and payload["id"] == str(alert.public_id) and payload["state"] == "firing"
    assert log_events(org) == [("alert_firing", "web-1", "cpu firing")]
    [transition] = SEEN
    assert transition == hooks.AlertTransition(organization_id=org.pk, alert_id=alert.pk, group_id=alert.group_id,
                                               rule_id=rule.pk, from_state="", to_state="firing", at=at(0),
                                               actor_repr="system")
    assert "alert consumer tests.alerts.test_lifecycle_services.explode failed" in caplog.text
    with pytest.raises(dataclasses.FrozenInstanceError):
        transition.to_state = "resolved"  # type: ignore[misc]

    with django_capture_on_commit_callbacks(execute=True):
        acknowledge_alert(alert=alert, actor=owner)
        record_outcomes(rule=rule, outcomes=[clear(host="web-1")], at=at(10), complete=True)
    assert [(t.from_state, t.to_state, t.actor_repr) for t in SEEN[1:]] == [
        ("firing", "acknowledged", "alice"), ("acknowledged", "resolved", "system")]
    assert [kind for kind, _, _ in log_events(org)] == ["alert_firing", "alert_acknowledged", "alert_resolved"]


def test_nothing_escapes_a_rolled_back_transition(org, broadcasts, django_capture_on_commit_callbacks):
    from django.db import transaction

    rule = rule_with_channels(org)
    with (override_settings(FIBERSTACK_ALERT_CONSUMERS=[RECORDING]),
          django_capture_on_commit_callbacks(execute=True), transaction.atomic()):
        record_outcomes(rule=rule, outcomes=[breach()], at=at(0), complete=True)
        transaction.set_rollback(True)
    assert broadcasts == [] and SEEN == [] and log_events(org) == []
    assert not Alert.objects.filter(rule=rule).exists()


def test_the_host_down_rule_also_records_node_down_and_node_up(org, django_capture_on_commit_callbacks):
    rule = rule_with_channels(org, name="host down", kind="absence", system_key="host-down")
    with django_capture_on_commit_callbacks(execute=True):
        record_outcomes(rule=rule, outcomes=[breach(value=None, host="db-1")], at=at(0), complete=True)
        record_outcomes(rule=rule, outcomes=[clear(value=1.0, host="db-1")], at=at(30), complete=True)
    assert log_events(org) == [("alert_firing", "db-1", "host down firing"), ("node_down", "db-1", "db-1 down"),
                               ("alert_resolved", "db-1", "host down resolved"), ("node_up", "db-1", "db-1 up")]


def test_a_pending_alert_that_clears_leaves_no_logs_event(org, django_capture_on_commit_callbacks):
    rule = rule_with_channels(org, for_seconds=60)
    with django_capture_on_commit_callbacks(execute=True):
        record_outcomes(rule=rule, outcomes=[breach()], at=at(0), complete=True)
        record_outcomes(rule=rule, outcomes=[clear()], at=at(10), complete=True)
    assert log_events(org) == []


def test_the_system_check_names_a_consumer_that_does_not_import(settings):
    settings.FIBERSTACK_ALERT_CONSUMERS = []
    assert hooks.check_consumers() == []
    settings.FIBERSTACK_ALERT_CONSUMERS = [RECORDING, "apps.alerts.no_such.consume"]
    [error] = hooks.check_consumers()
    assert error.id == "alerts.E001" and "no_such" in error.msg and "FIBERSTACK_ALERT_CONSUMERS" in error.msg


def test_manage_py_check_reports_a_bad_alert_consumer(settings):
    from django.core import checks

    settings.FIBERSTACK_ALERT_CONSUMERS = ["apps.alerts.no_such.consume"]
    assert "alerts.E001" in [message.id for message in checks.run_checks()]
