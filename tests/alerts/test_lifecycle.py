"""The alert state machine (record_outcomes) against PostgreSQL: pending period, hysteresis, recurrence,
severity changes, complete vs partial evaluations, templates, and the timeline each transition writes."""

from __future__ import annotations

import pytest

from apps.alerts.choices import AlertState
from apps.alerts.models import Alert, AlertEvent
from apps.alerts.services.lifecycle import fingerprint, record_outcomes
from tests.alerts.factories_lifecycle import at, breach, clear, notifications, rule_with_channels
from tests.hosts.factories import HostFactory

pytestmark = pytest.mark.django_db


def only_alert(rule) -> Alert:
    [alert] = Alert.objects.filter(rule=rule)
    return alert


def timeline(alert: Alert) -> list[tuple[str, str]]:
    return list(alert.events.order_by("pk").values_list("from_state", "to_state"))


def test_a_breach_without_for_fires_at_once_and_notifies(org):
    rule = rule_with_channels(org)
    [alert] = record_outcomes(rule=rule, outcomes=[breach(97.5)], at=at(0), complete=True)
    alert.refresh_from_db()
    assert alert.state == AlertState.FIRING
    assert alert.started_at == at(0) and alert.value == 97.5 and alert.threshold == 90.0
    assert alert.labels == {"host": "web-1", "alertname": rule.name, "severity": "critical"}
    assert alert.fingerprint == fingerprint({"host": "web-1", "alertname": rule.name})
    assert timeline(alert) == [("", "firing")]
    assert alert.group is not None and alert.notified_firing and alert.last_notified_at == at(0)
    [note] = notifications(rule)
    assert note.kind == "firing" and note.status == "pending" and note.payload["status"] == "firing"


def test_the_fingerprint_ignores_severity_and_includes_rule_labels(org):
    rule = rule_with_channels(org, labels={"team": "db"})
    record_outcomes(rule=rule, outcomes=[breach(severity="warning")], at=at(0), complete=True)
    record_outcomes(rule=rule, outcomes=[breach(severity="critical")], at=at(10), complete=True)
    alert = only_alert(rule)
    assert alert.labels == {"host": "web-1", "team": "db", "alertname": rule.name, "severity": "critical"}
    assert alert.fingerprint == fingerprint({"host": "web-1", "team": "db", "alertname": rule.name})


def test_for_keeps_an_alert_pending_until_the_breach_has_held(org):
    rule = rule_with_channels(org, for_seconds=60)
    record_outcomes(rule=rule, outcomes=[breach()], at=at(0), complete=True)
    alert = only_alert(rule)
    assert alert.state == AlertState.PENDING and alert.pending_since == at(0) and alert.started_at is None
    record_outcomes(rule=rule, outcomes=[breach(96)], at=at(59), complete=True)
    alert.refresh_from_db()
    assert alert.state == AlertState.PENDING and alert.value == 96
    assert notifications(rule) == []
    record_outcomes(rule=rule, outcomes=[breach(97)], at=at(60), complete=True)
    alert.refresh_from_db()
    assert alert.state == AlertState.FIRING and alert.started_at == at(60)
    assert timeline(alert) == [("", "pending"), ("pending", "firing")]
    assert len(notifications(rule)) == 1


def test_a_pending_alert_that_clears_resolves_quietly(org):
    rule = rule_with_channels(org, for_seconds=60)
    record_outcomes(rule=rule, outcomes=[breach()], at=at(0), complete=True)
    record_outcomes(rule=rule, outcomes=[clear()], at=at(30), complete=True)
    alert = only_alert(rule)
    assert alert.state == AlertState.RESOLVED and alert.resolved_at == at(30)
    assert timeline(alert) == [("", "pending"), ("pending", "resolved")]
    assert notifications(rule) == [] and not alert.notified_firing


def test_keep_firing_for_holds_a_firing_alert_until_clear_long_enough(org):
    rule = rule_with_channels(org, keep_firing_for_seconds=30)
    record_outcomes(rule=rule, outcomes=[breach()], at=at(0), complete=True)
    record_outcomes(rule=rule, outcomes=[clear()], at=at(10), complete=True)
    alert = only_alert(rule)
    assert alert.state == AlertState.FIRING and alert.clear_since == at(10)
    # A breach in between restarts the clock.
    record_outcomes(rule=rule, outcomes=[breach()], at=at(20), complete=True)
    alert.refresh_from_db()
    assert alert.clear_since is None
    record_outcomes(rule=rule, outcomes=[clear()], at=at(30), complete=True)
    record_outcomes(rule=rule, outcomes=[clear()], at=at(59), complete=True)
    alert.refresh_from_db()
    assert alert.state == AlertState.FIRING and alert.clear_since == at(30)
    record_outcomes(rule=rule, outcomes=[clear()], at=at(60), complete=True)
    alert.refresh_from_db()
    assert alert.state == AlertState.RESOLVED and alert.resolved_at == at(60) and alert.clear_since is None
    assert [n.kind for n in notifications(rule)] == ["firing", "resolved"]


def test_resolve_threshold_needs_the_value_back_past_it(org):
    rule = rule_with_channels(org, comparator=">", critical=90, resolve_threshold=80)
    record_outcomes(rule=rule, outcomes=[breach(95)], at=at(0), complete=True)
    record_outcomes(rule=rule, outcomes=[clear(85)], at=at(10), complete=True)  # below 90, above 80
    alert = only_alert(rule)
    assert alert.state == AlertState.FIRING and alert.value == 85 and alert.clear_since is None
    record_outcomes(rule=rule, outcomes=[clear(80)], at=at(20), complete=True)  # not > 80: past it
    alert.refresh_from_db()
    assert alert.state == AlertState.RESOLVED


def test_resolve_threshold_follows_a_less_than_comparator(org):
    rule = rule_with_channels(org, comparator="<", critical=10, resolve_threshold=20)
    record_outcomes(rule=rule, outcomes=[breach(5)], at=at(0), complete=True)
    record_outcomes(rule=rule, outcomes=[clear(15)], at=at(10), complete=True)
    assert only_alert(rule).state == AlertState.FIRING
    record_outcomes(rule=rule, outcomes=[clear(25)], at=at(20), complete=True)
    assert only_alert(rule).state == AlertState.RESOLVED


def test_an_acknowledged_alert_resolves_through_the_same_hysteresis(org, owner):
    from apps.alerts.services.lifecycle import acknowledge_alert

    rule = rule_with_channels(org, keep_firing_for_seconds=20)
    record_outcomes(rule=rule, outcomes=[breach()], at=at(0), complete=True)
    acknowledge_alert(alert=only_alert(rule), actor=owner)
    record_outcomes(rule=rule, outcomes=[clear()], at=at(10), complete=True)
    assert only_alert(rule).state == AlertState.ACKNOWLEDGED
    record_outcomes(rule=rule, outcomes=[clear()], at=at(30), complete=True)
    alert = only_alert(rule)
    assert alert.state == AlertState.RESOLVED
    assert timeline(alert)[-2:] == [("firing", "acknowledged"), ("acknowledged", "resolved")]


def test_recurrence_reopens_the_same_alert_with_a_new_start_and_no_acknowledgement(org, owner):
    from apps.alerts.services.lifecycle import acknowledge_alert

    rule = rule_with_channels(org)
    record_outcomes(rule=rule, outcomes=[breach()], at=at(0), complete=True)
    acknowledge_alert(alert=only_alert(rule), actor=owner)
    record_outcomes(rule=rule, outcomes=[clear()], at=at(10), complete=True)
    record_outcomes(rule=rule, outcomes=[breach(99)], at=at(100), complete=True)
    alert = only_alert(rule)
    assert Alert.objects.filter(rule=rule).count() == 1
    assert alert.state == AlertState.FIRING and alert.started_at == at(100)
    assert alert.acknowledged_at is None and alert.acknowledged_by is None and alert.resolved_at is None
    assert timeline(alert)[-1] == ("resolved", "firing")
    assert alert.events.order_by("-pk").first().message.startswith("recurred")
    assert [n.kind for n in notifications(rule)] == ["firing", "resolved", "firing"]


def test_a_severity_change_while_firing_updates_records_and_notifies(org):
    rule = rule_with_channels(org)
    record_outcomes(rule=rule, outcomes=[breach(85, severity="warning")], at=at(0), complete=True)
    record_outcomes(rule=rule, outcomes=[breach(85, severity="warning")], at=at(10), complete=True)
    record_outcomes(rule=rule, outcomes=[breach(99, severity="critical")], at=at(20), complete=True)
    alert = only_alert(rule)
    assert alert.severity == "critical" and alert.labels["severity"] == "critical"
    assert timeline(alert) == [("", "firing"), ("firing", "firing")]
    assert "warning -> critical" in alert.events.order_by("time").last().message
    notes = notifications(rule)
    assert [n.kind for n in notes] == ["firing", "firing"]
    assert notes[1].payload["alerts"][0]["labels"]["severity"] == "critical"


def test_a_complete_evaluation_clears_open_alerts_it_no_longer_sees(org):
    rule = rule_with_channels(org)
    record_outcomes(rule=rule, outcomes=[breach(host="a"), breach(host="b")], at=at(0), complete=True)
    record_outcomes(rule=rule, outcomes=[breach(host="a")], at=at(10), complete=True)
    states = dict(Alert.objects.filter(rule=rule).values_list("labels__host", "state"))
    assert states == {"a": "firing", "b": "resolved"}
    b = Alert.objects.get(rule=rule, labels__host="b")
    assert b.events.order_by("time").last().message == "resolved: series gone"


def test_a_partial_evaluation_changes_only_the_label_sets_it_lists(org):
    rule = rule_with_channels(org)
    record_outcomes(rule=rule, outcomes=[breach(host="a"), breach(host="b")], at=at(0), complete=True)
    record_outcomes(rule=rule, outcomes=[breach(91, host="a")], at=at(10), complete=False)
    states = dict(Alert.objects.filter(rule=rule).values_list("labels__host", "state"))
    assert states == {"a": "firing", "b": "firing"}
    record_outcomes(rule=rule, outcomes=[clear(host="b")], at=at(20), complete=False)
    states = dict(Alert.objects.filter(rule=rule).values_list("labels__host", "state"))
    assert states == {"a": "firing", "b": "resolved"}


def test_values_and_texts_are_refreshed_on_every_evaluation(org):
    host = HostFactory(organization=org, name="db-7")
    rule = rule_with_channels(org, summary_template="{labels[host]} at {value:.1f} (limit {threshold})",
                              description_template="on {host}")
    baseline = {"method": "mean_stddev", "center": 50.0, "spread": 5.0}
    outcome = breach(95.25, host="db-7")
    record_outcomes(rule=rule, outcomes=[outcome], at=at(0), complete=True)
    record_outcomes(rule=rule, outcomes=[type(outcome)(labels=outcome.labels, value=97.0, severity="critical",
                                                      threshold=91.0, host_id=host.pk, baseline=baseline)],
                    at=at(10), complete=True)
    alert = only_alert(rule)
    assert alert.summary == "db-7 at 97.0 (limit 91.0)" and alert.description == "on db-7"
    assert alert.value == 97.0 and alert.threshold == 91.0 and alert.baseline == baseline
    assert alert.host_id == host.pk and alert.last_evaluated_at == at(10)


@pytest.mark.parametrize("template", ["{value.__class__}", "{nope}", "{labels[host", "{0}", "{value:zz}",
                                      "{labels[a][b]}"])
def test_a_bad_template_never_raises(org, template):
    rule = rule_with_channels(org, summary_template=template)
    [alert] = record_outcomes(rule=rule, outcomes=[breach()], at=at(0), complete=True)
    assert alert.state == AlertState.FIRING and alert.summary == template


def test_the_timeline_records_value_threshold_and_baseline(org):
    rule = rule_with_channels(org)
    baseline = {"method": "median_mad", "center": 10.0}
    outcome = breach(42.0)
    record_outcomes(rule=rule, outcomes=[type(outcome)(labels=outcome.labels, value=42.0, severity="critical",
                                                      threshold=30.0, baseline=baseline)],
                    at=at(0), complete=True)
    event = AlertEvent.objects.get(alert__rule=rule)
    assert (event.time, event.value, event.threshold, event.actor_type, event.actor_repr) == (
        at(0), 42.0, 30.0, "system", "system")
    assert event.details["baseline"] == baseline and event.organization_id == org.pk


def test_nothing_to_do_costs_one_query(org, django_assert_num_queries):
    rule = rule_with_channels(org)
    with django_assert_num_queries(1):
        assert record_outcomes(rule=rule, outcomes=[clear(host=f"h{i}") for i in range(50)], at=at(0),
                               complete=True) == []
    assert not Alert.objects.filter(rule=rule).exists()


def test_without_templates_the_summary_says_what_breached_where(org):
    rule = rule_with_channels(org, name="cpu high", comparator=">", description="CPU above the limit")
    [alert] = record_outcomes(rule=rule, outcomes=[breach(95.5, host="web-1")], at=at(0), complete=True)
    assert alert.summary == "cpu high on web-1: 95.5 > 90" and alert.description == "CPU above the limit"
