"""Group notifications: one message per channel per group change, never delayed; the Alertmanager v4 body;
suppression (silence, maintenance, inhibition) and the house rule that anything told firing is told
resolved; reminders."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from apps.alerts import suppression
from apps.alerts.choices import AlertState
from apps.alerts.models import Alert, AlertGroup, Notification
from apps.alerts.services import lifecycle
from apps.alerts.services.lifecycle import acknowledge_alert, record_outcomes, resolve_alert
from apps.alerts.suppression import Suppression
from tests.alerts.factories import NotificationChannelFactory
from tests.alerts.factories_lifecycle import at, breach, clear, notifications, rule_with_channels

pytestmark = pytest.mark.django_db


@pytest.fixture
def suppress(monkeypatch: Any) -> dict[str, Suppression]:
    """Hosts listed here are suppressed (the real suppression_for belongs to another module)."""
    rules: dict[str, Suppression] = {}

    def suppression_for(alert: Alert, *, at: dt.datetime) -> Suppression | None:
        return rules.get(alert.labels.get("host", ""))

    def suppressions_for(alerts: Any, *, at: dt.datetime) -> dict[int, Suppression | None]:
        return {alert.pk: suppression_for(alert, at=at) for alert in alerts}

    monkeypatch.setattr(suppression, "suppression_for", suppression_for)
    monkeypatch.setattr(suppression, "suppressions_for", suppressions_for)
    return rules


def test_the_payload_is_an_alertmanager_v4_body(org, settings):
    settings.FIBERSTACK_BASE_URL = "https://fs.example.com/"
    rule = rule_with_channels(org, name="High CPU", labels={"team": "ops"}, summary_template="cpu {value}",
                              description_template="on {host}")
    record_outcomes(rule=rule, outcomes=[breach(95.0)], at=at(0), complete=True)
    alert = Alert.objects.get(rule=rule)
    [note] = notifications(rule)
    labels = {"host": "web-1", "team": "ops", "alertname": "High CPU", "severity": "critical"}
    assert note.payload == {
        "version": "4",
        "groupKey": '{}:{alertname="High CPU"}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": note.channel.name,
        "groupLabels": {"alertname": "High CPU"},
        "commonLabels": labels,
        "commonAnnotations": {"summary": "cpu 95.0", "description": "on web-1"},
        "externalURL": "https://fs.example.com/acme/alerts/",
        "alerts": [{
            "status": "firing",
            "labels": labels,
            "annotations": {"summary": "cpu 95.0", "description": "on web-1"},
            "startsAt": "2026-12-04T12:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": f"https://fs.example.com/acme/alerts/{alert.public_id}/",
            "fingerprint": alert.fingerprint,
        }],
    }
    assert note.alert_id == alert.pk and note.group_id == alert.group_id
    record_outcomes(rule=rule, outcomes=[clear()], at=at(30), complete=True)
    resolved = notifications(rule)[-1]
    assert resolved.kind == "resolved" and resolved.payload["status"] == "resolved"
    assert resolved.payload["alerts"][0]["status"] == "resolved"
    assert resolved.payload["alerts"][0]["endsAt"] == "2026-12-04T12:00:30Z"


def test_one_notification_per_enabled_channel(org):
    rule = rule_with_channels(org, channels=2)
    rule.channels.add(NotificationChannelFactory(organization=org, enabled=False))
    record_outcomes(rule=rule, outcomes=[breach()], at=at(0), complete=True)
    notes = notifications(rule)
    assert len(notes) == 2 and {n.channel.enabled for n in notes} == {True}
    assert sorted(n.payload["receiver"] for n in notes) == sorted(c.name for c in rule.channels.filter(enabled=True))


def test_a_storm_of_200_alerts_in_one_group_is_one_notification_per_channel(org):
    rule = rule_with_channels(org, channels=2)
    record_outcomes(rule=rule, outcomes=[breach(host=f"h{i:03}") for i in range(200)], at=at(0), complete=True)
    assert Alert.objects.filter(rule=rule, state="firing").count() == 200
    notes = notifications(rule)
    assert len(notes) == 2
    assert all(len(n.payload["alerts"]) == 200 and n.alert_id is None for n in notes)
    assert "host" not in notes[0].payload["commonLabels"]
    assert AlertGroup.objects.filter(rule=rule).count() == 1
    # The same storm again changes nothing and sends nothing.
    record_outcomes(rule=rule, outcomes=[breach(host=f"h{i:03}") for i in range(200)], at=at(10), complete=True)
    assert len(notifications(rule)) == 2
    # One more alert joins: one message per channel with all 201.
    record_outcomes(rule=rule, outcomes=[breach(host="new")], at=at(20), complete=False)
    notes = notifications(rule)
    assert len(notes) == 4 and len(notes[-1].payload["alerts"]) == 201


def test_notifications_are_enqueued_for_delivery_after_commit(org, monkeypatch,
                                                              django_capture_on_commit_callbacks):
    from apps.alerts import delivery

    sent: list[int] = []
    monkeypatch.setattr(delivery, "_send", lambda ids: sent.extend(ids))
    rule = rule_with_channels(org, channels=2)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        record_outcomes(rule=rule, outcomes=[breach()], at=at(0), complete=True)
    assert sent == []
    for callback in callbacks:
        callback()
    assert sorted(sent) == sorted(n.pk for n in notifications(rule))


def test_group_by_splits_groups_and_each_notifies_on_its_own(org):
    rule = rule_with_channels(org, group_by=["dc"])
    record_outcomes(rule=rule, outcomes=[breach(host="a", dc="fra"), breach(host="b", dc="fra"),
                                         breach(host="c", dc="ams")], at=at(0), complete=True)
    groups = {g.group_labels["dc"]: g for g in AlertGroup.objects.filter(rule=rule)}
    assert set(groups) == {"fra", "ams"}
    by_group = {n.group.group_labels["dc"]: n.payload for n in notifications(rule)}
    assert len(by_group["fra"]["alerts"]) == 2 and len(by_group["ams"]["alerts"]) == 1
    assert by_group["fra"]["groupLabels"] == {"alertname": rule.name, "dc": "fra"}
    assert by_group["fra"]["commonLabels"]["dc"] == "fra"
    # Only the changed group notifies.
    record_outcomes(rule=rule, outcomes=[clear(host="c", dc="ams")], at=at(10), complete=False)
    assert [n.group.group_labels["dc"] for n in notifications(rule)][-1] == "ams"
    assert len(notifications(rule)) == 3
    assert AlertGroup.objects.get(pk=groups["ams"].pk).state == AlertState.RESOLVED
    assert AlertGroup.objects.get(pk=groups["fra"].pk).state == AlertState.FIRING


def test_a_resolve_inside_a_group_lists_the_rest_still_firing(org):
    rule = rule_with_channels(org)
    record_outcomes(rule=rule, outcomes=[breach(host="a"), breach(host="b")], at=at(0), complete=True)
    record_outcomes(rule=rule, outcomes=[breach(host="a")], at=at(10), complete=True)
    payload = notifications(rule)[-1].payload
    assert payload["status"] == "firing"
    assert sorted((a["labels"]["host"], a["status"]) for a in payload["alerts"]) == [("a", "firing"),
                                                                                     ("b", "resolved")]


def test_acknowledging_sends_nothing(org, owner):
    rule = rule_with_channels(org)
    record_outcomes(rule=rule, outcomes=[breach()], at=at(0), complete=True)
    acknowledge_alert(alert=Alert.objects.get(rule=rule), actor=owner)
    record_outcomes(rule=rule, outcomes=[breach()], at=at(10), complete=True)
    assert len(notifications(rule)) == 1


def test_a_manual_resolve_tells_the_channels(org, owner):
    rule = rule_with_channels(org)
    record_outcomes(rule=rule, outcomes=[breach()], at=at(0), complete=True)
    resolve_alert(alert=Alert.objects.get(rule=rule), actor=owner)
    assert [n.kind for n in notifications(rule)] == ["firing", "resolved"]


# Suppression ---------------------------------------------------------------------------------------------


def test_a_silenced_alert_is_recorded_as_suppressed_and_not_enqueued(org, suppress,
                                                                     django_capture_on_commit_callbacks,
                                                                     monkeypatch):
    from apps.alerts import delivery

    sent: list[int] = []
    monkeypatch.setattr(delivery, "_send", lambda ids: sent.extend(ids))
    suppress["web-1"] = Suppression(kind="silence", reason="silenced by alice: deploy", ref="s1")
    rule = rule_with_channels(org)
    with django_capture_on_commit_callbacks(execute=True):
        record_outcomes(rule=rule, outcomes=[breach()], at=at(0), complete=True)
        record_outcomes(rule=rule, outcomes=[breach()], at=at(10), complete=True)
    [note] = notifications(rule)
    assert note.status == "suppressed" and note.suppressed_reason == "silenced by alice: deploy"
    assert sent == []
    alert = Alert.objects.get(rule=rule)
    assert alert.state == "firing" and alert.suppressed_reason == "silenced by alice: deploy"
    assert alert.inhibited_by == "" and not alert.notified_firing
    # Resolving an alert nobody was told about sends nothing.
    record_outcomes(rule=rule, outcomes=[clear()], at=at(20), complete=True)
    assert [n.status for n in notifications(rule)] == ["suppressed"]


def test_suppressed_alerts_are_left_out_of_a_group_message(org, suppress):
    suppress["b"] = Suppression(kind="inhibition", reason="inhibited by host db-1 down", ref="h1")
    rule = rule_with_channels(org)
    record_outcomes(rule=rule, outcomes=[breach(host="a"), breach(host="b")], at=at(0), complete=True)
    [note] = notifications(rule)
    assert [a["labels"]["host"] for a in note.payload["alerts"]] == ["a"] and note.status == "pending"
    b = Alert.objects.get(rule=rule, labels__host="b")
    assert b.inhibited_by == "inhibited by host db-1 down" == b.suppressed_reason


def test_resolved_after_silence_is_always_notified(org, suppress):
    """Told firing, then silenced, then resolved: the resolve still goes out (Alertmanager's gap)."""
    rule = rule_with_channels(org)
    record_outcomes(rule=rule, outcomes=[breach()], at=at(0), complete=True)
    suppress["web-1"] = Suppression(kind="silence", reason="silenced", ref="s1")
    record_outcomes(rule=rule, outcomes=[breach()], at=at(10), complete=True)
    record_outcomes(rule=rule, outcomes=[clear()], at=at(20), complete=True)
    notes = notifications(rule)
    assert [(n.kind, n.status) for n in notes] == [("firing", "pending"), ("resolved", "pending")]
    assert notes[1].payload["alerts"][0]["status"] == "resolved"
    assert not Alert.objects.get(rule=rule).notified_firing


def test_an_alert_is_paged_once_its_silence_ends(org, suppress):
    suppress["web-1"] = Suppression(kind="maintenance", reason="maintenance: db upgrade", ref="m1")
    rule = rule_with_channels(org)
    record_outcomes(rule=rule, outcomes=[breach()], at=at(0), complete=True)
    lifecycle.send_reminders(now=timezone.now())
    assert [n.status for n in notifications(rule)] == ["suppressed"]
    suppress.clear()
    summary = lifecycle.send_reminders(now=timezone.now())
    assert summary.rechecked_groups == 1
    assert [(n.kind, n.status) for n in notifications(rule)] == [("firing", "suppressed"), ("firing", "pending")]
    alert = Alert.objects.get(rule=rule)
    assert alert.notified_firing and alert.suppressed_reason == ""


# Reminders -----------------------------------------------------------------------------------------------


def test_reminders_go_out_once_per_group_after_the_repeat_interval(org, owner):
    rule = rule_with_channels(org, repeat_interval_seconds=60)
    record_outcomes(rule=rule, outcomes=[breach(host="a"), breach(host="b")], at=at(0), complete=True)
    assert lifecycle.send_reminders(now=at(59)).notifications == 0
    summary = lifecycle.send_reminders(now=at(60))
    assert (summary.reminded_groups, summary.notifications) == (1, 1)
    reminder = notifications(rule, kind="reminder")[0]
    assert len(reminder.payload["alerts"]) == 2 and reminder.payload["status"] == "firing"
    assert lifecycle.send_reminders(now=at(61)).notifications == 0  # claimed: last_notified_at moved
    assert set(Alert.objects.filter(rule=rule).values_list("last_notified_at", flat=True)) == {at(60)}
    acknowledge_alert(alert=Alert.objects.get(rule=rule, labels__host="a"), actor=owner)
    lifecycle.send_reminders(now=at(120))
    latest = notifications(rule, kind="reminder")[-1]
    assert [a["labels"]["host"] for a in latest.payload["alerts"]] == ["b"]


def test_no_reminders_when_the_interval_is_zero(org):
    rule = rule_with_channels(org, repeat_interval_seconds=0)
    record_outcomes(rule=rule, outcomes=[breach()], at=at(0), complete=True)
    assert lifecycle.send_reminders(now=at(10**6)).notifications == 0


def test_the_reminder_task_reports_a_summary(org):
    from apps.alerts.tasks.lifecycle import send_reminders

    rule = rule_with_channels(org, repeat_interval_seconds=1)
    record_outcomes(rule=rule, outcomes=[breach()], at=timezone.now() - dt.timedelta(seconds=5), complete=True)
    assert send_reminders.apply().get() == "1 notifications, 1 groups reminded, 0 suppressed groups re-checked"
    assert Notification.objects.filter(kind="reminder").count() == 1
