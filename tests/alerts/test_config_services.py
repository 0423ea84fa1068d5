"""Rule and channel services: validation per kind, due at once, audit with diffs (never the signing
secret), system rules, channel deletion detaching rules."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from apps.alerts.models import AlertRule, NotificationChannel
from apps.alerts.services import config as services
from apps.audit.models import AuditEvent
from tests.alerts.factories import AlertRuleFactory, NotificationChannelFactory

pytestmark = pytest.mark.django_db

THRESHOLD = {"name": "cpu high", "metric": "cpu_usage", "reducer": "avg", "window_seconds": 60,
             "comparator": ">", "critical": 90.0}


def _errors(excinfo: pytest.ExceptionInfo[ValidationError]) -> dict[str, list[str]]:
    return excinfo.value.message_dict


def _rule(org, **overrides):
    return services.create_rule(organization=org, actor=None, **{**THRESHOLD, **overrides})


def test_create_rule_is_due_at_once_and_audited_with_its_channels(org, owner):
    channel = NotificationChannelFactory(organization=org)
    before = timezone.now()
    rule = services.create_rule(organization=org, actor=owner, channels=[channel], **THRESHOLD)
    assert before <= rule.next_evaluation_at <= timezone.now()
    assert rule in AlertRule.objects.due(timezone.now())
    assert list(rule.channels.all()) == [channel]
    event = AuditEvent.objects.get(action="alert_rule.created", object_id=str(rule.public_id))
    assert event.actor_user == owner and event.organization == org
    assert event.changes["channels"] == [None, [str(channel.public_id)]]
    assert event.changes["critical"] == [None, 90.0]
    assert "next_evaluation_at" not in event.changes


@pytest.mark.parametrize(("overrides", "field"), [
    ({"metric": ""}, "metric"),
    ({"critical": None}, "critical"),
    ({"kind": "anomaly", "metric": ""}, "metric"),
    ({"kind": "absence", "metric": "", "critical": None}, "absence_seconds"),
    ({"reducer": "median"}, "reducer"),
    ({"comparator": "=>"}, "comparator"),
    ({"window_seconds": 0}, "window_seconds"),
    ({"window_seconds": 7 * 86400 + 1}, "window_seconds"),
    ({"for_seconds": 8 * 86400}, "for_seconds"),
    ({"critical": float("nan")}, "critical"),
    ({"label_matchers": 'cpu="total",mode!~'}, "label_matchers"),
    ({"labels": {"severity": "page"}}, "labels"),
    ({"labels": {"team": 3}}, "labels"),
    ({"group_by": ["host", "bad-name"]}, "group_by"),
    ({"host_names": "web-1"}, "host_names"),
    ({"name": "  "}, "name"),
    ({"kind": "anomaly", "seasonal": True, "training_seconds": 86400}, "seasonal"),
    ({"kind": "anomaly", "anomaly_k": 0}, "anomaly_k"),
    ({"evaluation_interval_seconds": 0}, "evaluation_interval_seconds"),
])
def test_invalid_rules_are_refused_naming_the_field(org, overrides, field):
    with pytest.raises(ValidationError) as excinfo:
        _rule(org, **overrides)
    assert field in _errors(excinfo), _errors(excinfo)
    assert not AlertRule.objects.exists()


def test_each_kind_needs_only_its_own_settings(org):
    absence = _rule(org, name="heartbeat", kind="absence", metric="", critical=None, absence_seconds=120)
    anomaly = _rule(org, name="latency odd", kind="anomaly", metric="http_latency", critical=None)
    warning_only = _rule(org, name="disk warn", critical=None, warning=80.0)
    assert {r.kind for r in (absence, anomaly, warning_only)} == {"absence", "anomaly", "threshold"}


@pytest.mark.parametrize(("comparator", "warning", "critical", "ok"), [
    (">", 80, 90, True), (">", 90, 80, False), (">=", 90, 90, False),
    ("<", 20, 10, True), ("<", 10, 20, False), ("<=", 5, 10, False),
    ("==", 1, 2, True), ("!=", 3, 3, False),
])
def test_warning_and_critical_follow_the_comparator(org, comparator, warning, critical, ok):
    if ok:
        assert _rule(org, comparator=comparator, warning=warning, critical=critical).pk
        return
    with pytest.raises(ValidationError) as excinfo:
        _rule(org, comparator=comparator, warning=warning, critical=critical)
    assert "warning" in _errors(excinfo)


@pytest.mark.parametrize(("comparator", "resolve", "ok"), [(">", 85, True), (">", 95, False),
                                                            ("<", 95, True), ("<", 85, False)])
def test_resolve_threshold_lies_on_the_clear_side(org, comparator, resolve, ok):
    fields = {"comparator": comparator, "critical": 90.0, "resolve_threshold": resolve}
    if ok:
        assert _rule(org, **fields).resolve_threshold == resolve
    else:
        with pytest.raises(ValidationError) as excinfo:
            _rule(org, **fields)
        assert "resolve_threshold" in _errors(excinfo)


def test_matchers_are_parsed_by_the_query_parser_and_checked_by_postgresql(org):
    assert _rule(org, label_matchers='{cpu="total",mode!~"idle|iowait"}').label_matchers
    with pytest.raises(ValidationError) as excinfo:
        _rule(org, name="bad", label_matchers="cpu=total")
    assert "cannot parse label matcher" in _errors(excinfo)["label_matchers"][0]
    # Python's re accepts a possessive quantifier (3.11); PostgreSQL, which runs the matcher, does not.
    with pytest.raises(ValidationError) as excinfo:
        _rule(org, name="bad2", label_matchers='path=~"a++"')
    assert "invalid regular expression for path" in _errors(excinfo)["label_matchers"][0]


def test_channels_of_another_organization_are_refused(org, other_org):
    foreign = NotificationChannelFactory(organization=other_org)
    with pytest.raises(ValidationError) as excinfo:
        services.create_rule(organization=org, actor=None, channels=[foreign], **THRESHOLD)
    assert "channels" in _errors(excinfo)


def test_duplicate_names_are_refused_per_organization(org, other_org):
    _rule(org)
    assert _rule(other_org).pk
    with pytest.raises(ValidationError) as excinfo:
        _rule(org)
    assert "already exists" in _errors(excinfo)["name"][0]


def test_update_rule_makes_it_due_resets_the_error_streak_and_audits_the_diff(org, editor):
    rule = AlertRuleFactory(organization=org, next_evaluation_at=timezone.now() + dt.timedelta(hours=1),
                            consecutive_errors=5)
    channel = NotificationChannelFactory(organization=org)
    services.update_rule(rule=rule, actor=editor, critical=95.0, channels=[channel])
    rule.refresh_from_db()
    assert rule.critical == 95.0 and rule.consecutive_errors == 0
    assert rule in AlertRule.objects.due(timezone.now())
    event = AuditEvent.objects.get(action="alert_rule.updated")
    assert event.changes == {"critical": [90.0, 95.0], "channels": [[], [str(channel.public_id)]]}
    services.update_rule(rule=rule, actor=editor, critical=95.0)
    assert AuditEvent.objects.filter(action="alert_rule.updated").count() == 1  # nothing changed: no row


def test_update_rule_keeps_channels_unless_given(org):
    channel = NotificationChannelFactory(organization=org)
    rule = services.create_rule(organization=org, actor=None, channels=[channel], **THRESHOLD)
    services.update_rule(rule=rule, actor=None, enabled=False)
    assert list(rule.channels.all()) == [channel]
    services.update_rule(rule=rule, actor=None, channels=[])
    assert list(rule.channels.all()) == []


def test_update_rule_validates_the_merged_rule(org):
    rule = AlertRuleFactory(organization=org, comparator=">", critical=90.0)
    with pytest.raises(ValidationError) as excinfo:
        services.update_rule(rule=rule, actor=None, warning=95.0)
    assert "warning" in _errors(excinfo)
    rule.refresh_from_db()
    assert rule.warning is None


def test_system_rules_can_be_tuned_but_not_deleted_or_changed_in_kind(org):
    rule = AlertRuleFactory(organization=org, kind="absence", metric="", critical=None, absence_seconds=60,
                            system_key="host_down")
    services.update_rule(rule=rule, actor=None, absence_seconds=120, enabled=False)
    assert AlertRule.objects.get(pk=rule.pk).absence_seconds == 120
    with pytest.raises(ValidationError) as excinfo:
        services.update_rule(rule=rule, actor=None, kind="threshold", metric="up", critical=1)
    assert "kind" in _errors(excinfo)
    with pytest.raises(services.SystemRuleError):
        services.delete_rule(rule=rule, actor=None)
    assert AlertRule.objects.filter(pk=rule.pk).exists()


def test_delete_rule_is_audited(org, admin_member):
    rule = AlertRuleFactory(organization=org)
    services.delete_rule(rule=rule, actor=admin_member)
    assert not AlertRule.objects.exists()
    event = AuditEvent.objects.get(action="alert_rule.deleted")
    assert event.changes["name"] == [rule.name, None]


# --- channels ----------------------------------------------------------------------------------------


def test_create_channel_audits_without_the_secret_or_header_values(org, owner):
    channel = services.create_channel(organization=org, actor=owner, name="ops", kind="webhook",
                                      url="https://hooks.example.com/a", headers={"Authorization": "Bearer s3cret"})
    assert len(channel.signing_secret) >= 32
    event = AuditEvent.objects.get(action="notification_channel.created")
    text = json.dumps(event.changes)
    assert channel.signing_secret not in text and "s3cret" not in text
    assert "signing_secret" not in event.changes
    assert event.changes["headers"][1]["Authorization"].startswith("sha256:")


def test_rotating_the_secret_changes_it_and_audits_that_only(org, owner):
    channel = NotificationChannelFactory(organization=org)
    old = channel.signing_secret
    services.rotate_channel_secret(channel=channel, actor=owner)
    assert channel.signing_secret != old
    assert NotificationChannel.objects.get(pk=channel.pk).signing_secret == channel.signing_secret
    events = AuditEvent.objects.filter(object_id=str(channel.public_id))
    assert [e.action for e in events] == ["notification_channel.secret_rotated"]
    text = json.dumps([e.changes for e in events])
    assert old not in text and channel.signing_secret not in text


@pytest.mark.parametrize(("fields", "field"), [
    ({"kind": "webhook"}, "url"),
    ({"kind": "slack", "url": "ftp://example.com/x"}, "url"),
    ({"kind": "webhook", "url": "not a url"}, "url"),
    ({"kind": "email"}, "address"),
    ({"kind": "email", "address": "not-an-address"}, "address"),
    ({"kind": "email", "address": "ops@example.com", "url": "https://x.example"}, "url"),
    ({"kind": "webhook", "url": "https://x.example", "address": "ops@example.com"}, "address"),
    ({"kind": "webhook", "url": "https://x.example", "headers": {"X-FiberStack-Signature": "x"}}, "headers"),
    ({"kind": "webhook", "url": "https://x.example", "headers": {"X-Evil": "a\r\nHost: b"}}, "headers"),
    ({"kind": "webhook", "url": "https://x.example", "headers": {"bad name": "a"}}, "headers"),
    ({"kind": "slack", "url": "https://x.example", "headers": {"X-A": "a"}}, "headers"),
    ({"kind": "pager", "url": "https://x.example"}, "kind"),
    ({"kind": "webhook", "url": "https://x.example", "rate_limit_per_minute": 10**6}, "rate_limit_per_minute"),
])
def test_invalid_channels_are_refused_naming_the_field(org, fields, field):
    with pytest.raises(ValidationError) as excinfo:
        services.create_channel(organization=org, actor=None, name="c", **fields)
    assert field in _errors(excinfo), _errors(excinfo)
    assert not NotificationChannel.objects.exists()


def test_switching_a_channel_kind_clears_what_the_new_kind_does_not_use(org):
    channel = NotificationChannelFactory(organization=org, kind="webhook", url="https://x.example",
                                         headers={"X-A": "1"})
    services.update_channel(channel=channel, actor=None, kind="email", address="ops@example.com")
    channel.refresh_from_db()
    assert (channel.kind, channel.url, channel.headers, channel.address) == ("email", "", {}, "ops@example.com")


def test_deleting_a_channel_detaches_it_from_its_rules(org, admin_member):
    kept = NotificationChannelFactory(organization=org)
    gone = NotificationChannelFactory(organization=org)
    rule = services.create_rule(organization=org, actor=None, channels=[kept, gone], **THRESHOLD)
    services.delete_channel(channel=gone, actor=admin_member)
    assert AlertRule.objects.filter(pk=rule.pk).exists()
    assert list(rule.channels.all()) == [kept]
    event = AuditEvent.objects.get(action="notification_channel.deleted")
    assert event.changes["rules"] == [[str(rule.public_id)], None]
    assert gone.signing_secret not in json.dumps(event.changes)


def test_services_refuse_unknown_fields(org):
    with pytest.raises(TypeError):
        services.create_rule(organization=org, actor=None, system_key="host_down", **THRESHOLD)
    with pytest.raises(TypeError):
        services.create_channel(organization=org, actor=None, name="x", kind="email", address="a@b.c",
                                signing_secret="mine")
