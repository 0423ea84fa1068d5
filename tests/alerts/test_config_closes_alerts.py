"""A rule that stops being evaluated -- disabled or deleted -- resolves its open alerts first, so a channel
that was told an alert fired is told it resolved (the house rule), and the outbox row outlives the rule."""

from __future__ import annotations

import pytest

from apps.alerts.choices import AlertState
from apps.alerts.models import Alert, Notification
from apps.alerts.services import config
from apps.alerts.services.lifecycle import record_outcomes
from tests.alerts.factories_lifecycle import at, breach, rule_with_channels

pytestmark = pytest.mark.django_db


def _firing_rule(org):
    rule = rule_with_channels(org)
    record_outcomes(rule=rule, outcomes=[breach(97.0)], at=at(0), complete=True)
    assert Notification.objects.filter(organization=org, kind="firing").count() == 1
    return rule


def test_disabling_a_rule_resolves_its_firing_alerts_and_notifies_resolved(org, owner):
    rule = _firing_rule(org)
    config.update_rule(rule=rule, actor=owner, enabled=False)
    assert Alert.objects.get(rule=rule).state == AlertState.RESOLVED
    [resolved] = Notification.objects.filter(organization=org, kind="resolved")
    assert resolved.payload["status"] == "resolved" and resolved.status == "pending"


def test_deleting_a_rule_sends_resolved_and_keeps_the_ledger(org, owner):
    rule = _firing_rule(org)
    config.delete_rule(rule=rule, actor=owner)
    assert not Alert.objects.filter(organization=org).exists()
    kinds = sorted(Notification.objects.filter(organization=org).values_list("kind", "status"))
    assert kinds == [("firing", "pending"), ("resolved", "pending")]
    resolved = Notification.objects.get(organization=org, kind="resolved")
    assert resolved.alert_id is None and resolved.group_id is None
    assert resolved.payload["alerts"][0]["status"] == "resolved"


def test_a_rule_without_open_alerts_is_deleted_quietly(org, owner):
    rule = rule_with_channels(org)
    config.delete_rule(rule=rule, actor=owner)
    assert not Notification.objects.filter(organization=org).exists()
