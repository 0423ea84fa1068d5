"""Admin for rules and channels: writes go through the config services (validation as form errors, audit,
due at once); system rules cannot be deleted; the signing secret stays out of the audit log."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.utils import timezone

from apps.alerts.models import AlertRule, NotificationChannel
from apps.audit.models import AuditEvent
from tests.alerts.factories import AlertRuleFactory, NotificationChannelFactory
from tests.organizations.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_() -> Client:
    client = Client()
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


def _rule_form(org, **overrides):
    form = {"organization": org.pk, "name": "disk full", "kind": "threshold", "metric": "disk_used_percent",
            "label_matchers": 'mount="/"', "host_tags": "{}", "host_names": "[]", "reducer": "max",
            "window_seconds": 60, "comparator": ">", "critical": 95, "warning": 85, "for_seconds": 0,
            "keep_firing_for_seconds": 0, "anomaly_method": "mean_stddev", "anomaly_k": 3,
            "training_seconds": 604800, "labels": "{}", "repeat_interval_seconds": 14400, "group_by": "[]",
            "evaluation_interval_seconds": 10, "enabled": "on"}
    form.update(overrides)
    return {key: value for key, value in form.items() if value is not None}


def test_changelists_load(admin_client_, org):
    AlertRuleFactory(organization=org, name="cpu-rule")
    NotificationChannelFactory(organization=org, name="ops-hook")
    assert b"cpu-rule" in admin_client_.get("/admin/alerts/alertrule/").content
    assert b"ops-hook" in admin_client_.get("/admin/alerts/notificationchannel/").content


def test_admin_adds_a_rule_through_the_service(admin_client_, org):
    channel = NotificationChannelFactory(organization=org)
    response = admin_client_.post("/admin/alerts/alertrule/add/", _rule_form(org, channels=[channel.pk]))
    assert response.status_code == 302, response.content.decode()[:3000]
    rule = AlertRule.objects.get(name="disk full")
    assert list(rule.channels.all()) == [channel]
    assert rule in AlertRule.objects.due(timezone.now())
    event = AuditEvent.objects.get(action="alert_rule.created", object_id=str(rule.public_id))
    assert event.changes["channels"] == [None, [str(channel.public_id)]]


def test_admin_shows_service_validation_as_form_errors(admin_client_, org):
    response = admin_client_.post("/admin/alerts/alertrule/add/", _rule_form(org, warning=99))
    assert response.status_code == 200
    assert "the warning threshold must be below the critical one" in response.content.decode()
    response = admin_client_.post("/admin/alerts/alertrule/add/", _rule_form(org, label_matchers="cpu=total"))
    assert "cannot parse label matcher" in response.content.decode()
    assert not AlertRule.objects.exists()


def test_admin_changes_a_rule_through_the_service(admin_client_, org):
    rule = AlertRuleFactory(organization=org, name="disk full", metric="disk_used_percent", reducer="max",
                            critical=95.0, warning=85.0, label_matchers='mount="/"')
    form = _rule_form(org, critical=97)
    form.pop("organization")
    response = admin_client_.post(f"/admin/alerts/alertrule/{rule.pk}/change/", form)
    assert response.status_code == 302, response.content.decode()[:3000]
    event = AuditEvent.objects.get(action="alert_rule.updated")
    assert event.changes["critical"] == [95.0, 97.0]
    assert rule in AlertRule.objects.due(timezone.now())


def test_system_rules_cannot_be_deleted_in_the_admin(admin_client_, org):
    rule = AlertRuleFactory(organization=org, kind="absence", metric="", critical=None, absence_seconds=60,
                            system_key="host_down")
    assert admin_client_.get(f"/admin/alerts/alertrule/{rule.pk}/delete/").status_code == 403
    assert admin_client_.post(f"/admin/alerts/alertrule/{rule.pk}/delete/", {"post": "yes"}).status_code == 403
    bulk = admin_client_.post("/admin/alerts/alertrule/", {"action": "delete_selected", "_selected_action": [rule.pk],
                                                           "post": "yes"})
    assert bulk.status_code == 403  # the selection holds a rule the admin may not delete
    assert AlertRule.objects.filter(pk=rule.pk).exists()
    change_page = admin_client_.get(f"/admin/alerts/alertrule/{rule.pk}/change/").content.decode()
    assert 'name="kind"' not in change_page  # a system rule keeps its kind


def test_admin_deletes_an_ordinary_rule_through_the_service(admin_client_, org):
    rule = AlertRuleFactory(organization=org)
    assert admin_client_.post(f"/admin/alerts/alertrule/{rule.pk}/delete/", {"post": "yes"}).status_code == 302
    assert not AlertRule.objects.exists()
    assert AuditEvent.objects.filter(action="alert_rule.deleted", object_id=str(rule.public_id)).exists()


def test_admin_channel_writes_are_audited_without_the_secret(admin_client_, org):
    response = admin_client_.post("/admin/alerts/notificationchannel/add/", {
        "organization": org.pk, "name": "ops", "kind": "webhook", "url": "https://hooks.example.com/x",
        "headers": '{"Authorization": "Bearer s3cret"}', "enabled": "on", "rate_limit_per_minute": 60})
    assert response.status_code == 302, response.content.decode()[:3000]
    channel = NotificationChannel.objects.get(name="ops")
    changed = admin_client_.post(f"/admin/alerts/notificationchannel/{channel.pk}/change/", {
        "name": "ops", "kind": "webhook", "url": "https://hooks.example.com/y",
        "headers": '{"Authorization": "Bearer s3cret"}', "rate_limit_per_minute": 60})
    assert changed.status_code == 302, changed.content.decode()[:3000]
    admin_client_.post("/admin/alerts/notificationchannel/", {"action": "rotate_secrets",
                                                              "_selected_action": [channel.pk]})
    events = AuditEvent.objects.filter(object_id=str(channel.public_id)).order_by("id")
    assert [e.action for e in events] == ["notification_channel.created", "notification_channel.updated",
                                          "notification_channel.secret_rotated"]
    assert events[1].changes == {"url": ["https://hooks.example.com/x", "https://hooks.example.com/y"],
                                 "enabled": [True, False]}
    old_secret = channel.signing_secret
    channel.refresh_from_db()
    text = json.dumps([e.changes for e in events])
    assert channel.signing_secret != old_secret
    assert old_secret not in text and channel.signing_secret not in text and "s3cret" not in text


def test_admin_refuses_a_webhook_without_url(admin_client_, org):
    response = admin_client_.post("/admin/alerts/notificationchannel/add/", {
        "organization": org.pk, "name": "ops", "kind": "webhook", "headers": "{}", "rate_limit_per_minute": 60})
    assert response.status_code == 200
    assert "A webhook channel needs a url." in response.content.decode()
    assert not NotificationChannel.objects.exists()
