"""Rule and channel pages: viewers see, editors create and edit through the config services (audited),
admins delete; buttons a role may not use are hidden and their POSTs refused; validation messages are
shown on the field they concern; other organizations' rules and channels are 404."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from django.test import Client, override_settings
from django.urls import reverse

from apps.alerts.models import AlertRule, NotificationChannel
from apps.audit.models import AuditEvent
from apps.core.roles import Role
from fiberstack.settings.base import CACHES
from tests.alerts.factories import AlertRuleFactory, NotificationChannelFactory
from tests.metrics.factories import post

pytestmark = pytest.mark.django_db

UNREACHABLE_REDIS = {"default": {**CACHES["default"], "LOCATION": "redis://127.0.0.1:1/0"}}
ROLES = [Role.VIEWER, Role.EDITOR, Role.ADMIN, Role.OWNER]
EDITOR_UP = {Role.EDITOR, Role.ADMIN, Role.OWNER}
ADMIN_UP = {Role.ADMIN, Role.OWNER}


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def rule_data(**overrides: Any) -> dict[str, Any]:
    data = {"name": "cpu high", "kind": "threshold", "enabled": "on", "metric": "cpu_usage_active",
            "label_matchers": 'cpu="total"', "reducer": "avg", "window_seconds": "300", "comparator": ">",
            "critical": "90", "warning": "80", "for_seconds": "60", "keep_firing_for_seconds": "0",
            "anomaly_method": "mean_stddev", "anomaly_k": "3", "training_seconds": "604800",
            "repeat_interval_seconds": "14400", "evaluation_interval_seconds": "10", "labels": "team=ops",
            "group_by": "host", "host_names": "", "host_tags": "", "host_environment": ""}
    data.update(overrides)
    return data


# --- who sees what -----------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_every_member_sees_rules_and_channels_with_the_buttons_of_their_role(user_with_role, org, role):
    rule = AlertRuleFactory(organization=org, name="disk full")
    channel = NotificationChannelFactory(organization=org, name="ops-hook")
    client = _client(user_with_role(role))
    pages = {name: client.get(url) for name, url in {
        "rules": reverse("alerts:rules", args=[org.slug]),
        "rule": reverse("alerts:rule-detail", args=[org.slug, rule.public_id]),
        "channels": reverse("alerts:channels", args=[org.slug]),
        "channel": reverse("alerts:channel-detail", args=[org.slug, channel.public_id]),
    }.items()}
    assert {name: r.status_code for name, r in pages.items()} == dict.fromkeys(pages, 200)
    assert "disk full" in pages["rules"].content.decode() and "ops-hook" in pages["channels"].content.decode()
    text = {name: r.content.decode() for name, r in pages.items()}
    assert ('data-action="create-rule"' in text["rules"]) is (role in EDITOR_UP)
    assert ('data-action="edit-rule"' in text["rule"]) is (role in EDITOR_UP)
    assert ('data-action="delete-rule"' in text["rule"]) is (role in ADMIN_UP)
    assert ('data-action="create-channel"' in text["channels"]) is (role in EDITOR_UP)
    assert ('data-action="edit-channel"' in text["channel"]) is (role in EDITOR_UP)
    assert ('data-action="delete-channel"' in text["channel"]) is (role in ADMIN_UP)
    # The signing secret is a credential: editors and up only.
    assert (channel.signing_secret in text["channel"]) is (role in EDITOR_UP)
    assert ('data-action="rotate-secret"' in text["channel"]) is (role in EDITOR_UP)


def test_viewers_see_a_slack_channel_without_its_webhook_path(member_ro, editor, org):
    channel = NotificationChannelFactory(organization=org, kind="slack", url="https://hooks.slack.test/T0/B0/secret")
    for page in ("alerts:channels", "alerts:channel-detail"):
        args = [org.slug] if page == "alerts:channels" else [org.slug, channel.public_id]
        assert "T0/B0/secret" not in _client(member_ro).get(reverse(page, args=args)).content.decode()
        assert "T0/B0/secret" in _client(editor).get(reverse(page, args=args)).content.decode()


@pytest.mark.parametrize("role", ROLES)
def test_rule_and_channel_posts_are_refused_below_the_role_they_need(user_with_role, org, role):
    rule = AlertRuleFactory(organization=org, name="keep me")
    channel = NotificationChannelFactory(organization=org, name="keep-me")
    secret = channel.signing_secret
    client = _client(user_with_role(role))
    posts = {
        ("editor", "create rule"): (reverse("alerts:rule-create", args=[org.slug]), rule_data(name="new")),
        ("editor", "edit rule"): (reverse("alerts:rule-edit", args=[org.slug, rule.public_id]),
                                  rule_data(name="renamed")),
        ("editor", "create channel"): (reverse("alerts:channel-create", args=[org.slug]),
                                       {"name": "new", "kind": "webhook", "url": "http://127.0.0.1:9/x",
                                        "rate_limit_per_minute": "60", "enabled": "on"}),
        ("editor", "edit channel"): (reverse("alerts:channel-edit", args=[org.slug, channel.public_id]),
                                     {"name": "renamed", "kind": "webhook", "url": "http://127.0.0.1:9/x",
                                      "rate_limit_per_minute": "60"}),
        ("editor", "rotate"): (reverse("alerts:channel-rotate-secret", args=[org.slug, channel.public_id]), {}),
        ("admin", "delete rule"): (reverse("alerts:rule-delete", args=[org.slug, rule.public_id]), {}),
        ("admin", "delete channel"): (reverse("alerts:channel-delete", args=[org.slug, channel.public_id]), {}),
    }
    for (needed, what), (url, data) in posts.items():
        allowed = role in (EDITOR_UP if needed == "editor" else ADMIN_UP)
        if allowed:
            continue  # the allowed writes are proven one by one below
        assert client.post(url, data).status_code == 403, what
    if role == Role.VIEWER:
        assert client.get(reverse("alerts:rule-create", args=[org.slug])).status_code == 403
        assert client.get(reverse("alerts:channel-edit", args=[org.slug, channel.public_id])).status_code == 403
    assert AlertRule.objects.filter(organization=org).count() == 1
    assert NotificationChannel.objects.get(pk=channel.pk).signing_secret == secret
    if role == Role.VIEWER:
        assert not AuditEvent.objects.filter(organization=org).exists()


# --- rules -------------------------------------------------------------------------------------------


def test_an_editor_creates_a_rule_through_the_service(editor, org):
    channel = NotificationChannelFactory(organization=org, name="pager")
    response = _client(editor).post(reverse("alerts:rule-create", args=[org.slug]),
                                    rule_data(channels=[str(channel.public_id)], host_tags="role=web\nenv=prod"))
    rule = AlertRule.objects.get(organization=org, name="cpu high")
    assert response.status_code == 302
    assert response["Location"] == reverse("alerts:rule-detail", args=[org.slug, rule.public_id])
    assert (rule.metric, rule.critical, rule.warning, rule.for_seconds) == ("cpu_usage_active", 90.0, 80.0, 60)
    assert rule.labels == {"team": "ops"} and rule.group_by == ["host"]
    assert rule.host_tags == {"role": "web", "env": "prod"}
    assert list(rule.channels.all()) == [channel]
    assert rule.next_evaluation_at is not None  # due at once: the service ran
    event = AuditEvent.objects.get(organization=org, action="alert_rule.created")
    assert event.actor_user_id == editor.pk


def test_rule_form_shows_the_services_messages_on_their_fields(editor, org):
    AlertRuleFactory(organization=org, name="taken")
    client = _client(editor)
    taken = client.post(reverse("alerts:rule-create", args=[org.slug]), rule_data(name="taken"))
    assert taken.status_code == 400
    assert "already exists" in " ".join(taken.context["form"].errors["name"])
    response = client.post(reverse("alerts:rule-create", args=[org.slug]), rule_data(critical="80", warning="90"))
    assert response.status_code == 400
    content = response.content.decode()
    assert not AlertRule.objects.filter(organization=org).exclude(name="taken").exists()
    errors = response.context["form"].errors
    assert "warning threshold must be below the critical" in " ".join(errors["warning"])
    matchers = client.post(reverse("alerts:rule-create", args=[org.slug]), rule_data(label_matchers='cpu=="x'))
    assert "label_matchers" in matchers.context["form"].errors
    assert 'data-field="warning"' in content and "must be below the critical" in content
    assert "errorlist" in content


def test_rule_form_refuses_bad_input_before_the_service(editor, org):
    response = _client(editor).post(reverse("alerts:rule-create", args=[org.slug]),
                                    rule_data(window_seconds="soon", labels="no separator here"))
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert "window_seconds" in errors and "Line 1: expected name=value" in " ".join(errors["labels"])


def test_a_threshold_rule_without_a_metric_is_refused_on_the_metric_field(editor, org):
    response = _client(editor).post(reverse("alerts:rule-create", args=[org.slug]), rule_data(metric=""))
    assert response.status_code == 400
    assert "needs a metric" in " ".join(response.context["form"].errors["metric"])


def test_an_editor_edits_a_rule_and_the_form_starts_from_it(editor, org):
    rule = AlertRuleFactory(organization=org, name="cpu", critical=90.0, labels={"team": "db"})
    client = _client(editor)
    page = client.get(reverse("alerts:rule-edit", args=[org.slug, rule.public_id])).content.decode()
    assert 'value="cpu"' in page and "team=db" in page
    response = client.post(reverse("alerts:rule-edit", args=[org.slug, rule.public_id]),
                           rule_data(name="cpu", critical="95", warning=""))
    assert response.status_code == 302
    rule.refresh_from_db()
    assert rule.critical == 95.0 and rule.warning is None
    assert AuditEvent.objects.filter(organization=org, action="alert_rule.updated").count() == 1


def test_an_admin_deletes_a_rule_but_not_a_system_rule(admin_member, org):
    rule = AlertRuleFactory(organization=org)
    system = AlertRuleFactory(organization=org, name="host down", kind="absence", absence_seconds=60,
                              system_key="host-down")
    client = _client(admin_member)
    response = client.post(reverse("alerts:rule-delete", args=[org.slug, rule.public_id]))
    assert response.status_code == 302 and not AlertRule.objects.filter(pk=rule.pk).exists()
    assert AuditEvent.objects.filter(organization=org, action="alert_rule.deleted").count() == 1
    refused = client.post(reverse("alerts:rule-delete", args=[org.slug, system.public_id]), follow=True)
    assert AlertRule.objects.filter(pk=system.pk).exists()
    assert "system rule" in refused.content.decode()
    page = client.get(reverse("alerts:rule-detail", args=[org.slug, system.public_id])).content.decode()
    assert 'data-action="delete-rule"' not in page


def test_other_organizations_rules_and_channels_are_404(owner, other_org_user, org, other_org):
    rule = AlertRuleFactory(organization=other_org)
    channel = NotificationChannelFactory(organization=other_org)
    client = _client(owner)
    for name, obj in (("rule-detail", rule), ("rule-edit", rule), ("channel-detail", channel),
                      ("channel-edit", channel)):
        assert client.get(reverse(f"alerts:{name}", args=[org.slug, obj.public_id])).status_code == 404, name
    for name, obj in (("rule-edit", rule), ("rule-delete", rule), ("channel-edit", channel),
                      ("channel-delete", channel), ("channel-rotate-secret", channel)):
        assert client.post(reverse(f"alerts:{name}", args=[org.slug, obj.public_id]),
                           rule_data()).status_code == 404, name
    assert AlertRule.objects.filter(pk=rule.pk).exists() and NotificationChannel.objects.filter(pk=channel.pk).exists()
    # Non-members of our organization get 404 for its pages, like every other page.
    outsider = _client(other_org_user)
    for name in ("alerts:rules", "alerts:channels", "alerts:rule-create", "alerts:channel-create"):
        assert outsider.get(reverse(name, args=[org.slug])).status_code == 404, name


def test_a_rule_form_lists_only_this_organizations_channels(editor, org, other_org):
    NotificationChannelFactory(organization=org, name="ours")
    foreign = NotificationChannelFactory(organization=other_org, name="theirs")
    client = _client(editor)
    page = client.get(reverse("alerts:rule-create", args=[org.slug])).content.decode()
    assert "ours" in page and "theirs" not in page
    response = client.post(reverse("alerts:rule-create", args=[org.slug]), rule_data(channels=[str(foreign.public_id)]))
    assert response.status_code == 400 and "channels" in response.context["form"].errors
    assert not AlertRule.objects.filter(organization=org).exists()


# --- channels ----------------------------------------------------------------------------------------


def test_an_editor_creates_edits_and_rotates_a_channel(editor, org):
    client = _client(editor)
    response = client.post(reverse("alerts:channel-create", args=[org.slug]), {
        "name": "ops", "kind": "webhook", "url": "https://hooks.example.test/ops", "enabled": "on",
        "rate_limit_per_minute": "30", "headers": "Authorization: Bearer abc"})
    channel = NotificationChannel.objects.get(organization=org, name="ops")
    assert response.status_code == 302
    assert channel.headers == {"Authorization": "Bearer abc"} and channel.rate_limit_per_minute == 30
    response = client.post(reverse("alerts:channel-edit", args=[org.slug, channel.public_id]), {
        "name": "ops-mail", "kind": "email", "address": "ops@example.test", "rate_limit_per_minute": "30"})
    assert response.status_code == 302
    channel.refresh_from_db()
    assert (channel.kind, channel.address, channel.url, channel.headers) == ("email", "ops@example.test", "", {})
    assert channel.enabled is False  # unchecked box
    old = channel.signing_secret
    client.post(reverse("alerts:channel-rotate-secret", args=[org.slug, channel.public_id]))
    channel.refresh_from_db()
    assert channel.signing_secret != old
    assert set(AuditEvent.objects.filter(organization=org).values_list("action", flat=True)) >= {
        "notification_channel.created", "notification_channel.updated", "notification_channel.secret_rotated"}


def test_channel_form_shows_validation_messages_per_field(editor, org):
    response = _client(editor).post(reverse("alerts:channel-create", args=[org.slug]), {
        "name": "x", "kind": "email", "url": "ftp://nope", "rate_limit_per_minute": "60",
        "headers": "X-FiberStack-Signature: forged"})
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert "needs an address" in " ".join(errors["address"])
    assert "no url" in " ".join(errors["url"])
    assert "headers" in errors
    assert not NotificationChannel.objects.filter(organization=org).exists()


def test_an_admin_deletes_a_channel(admin_member, org):
    channel = NotificationChannelFactory(organization=org)
    response = _client(admin_member).post(reverse("alerts:channel-delete", args=[org.slug, channel.public_id]))
    assert response.status_code == 302 and not NotificationChannel.objects.filter(pk=channel.pk).exists()
    assert AuditEvent.objects.filter(organization=org, action="notification_channel.deleted").exists()


@override_settings(CACHES=UNREACHABLE_REDIS)
def test_rule_and_channel_pages_render_with_redis_down(editor, org):
    rule = AlertRuleFactory(organization=org)
    channel = NotificationChannelFactory(organization=org)
    client = _client(editor)
    for url in (reverse("alerts:rules", args=[org.slug]),
                reverse("alerts:rule-detail", args=[org.slug, rule.public_id]),
                reverse("alerts:rule-create", args=[org.slug]), reverse("alerts:channels", args=[org.slug]),
                reverse("alerts:channel-detail", args=[org.slug, channel.public_id])):
        assert client.get(url).status_code == 200, url


# --- preview -----------------------------------------------------------------------------------------


def _ingest(token: str, name: str, host: str, values: list[float], *, every: int = 60) -> None:
    """One sample a step, the last one a step ago, through the real ingest door."""
    now = int(time.time()) // every * every
    body = [{"host": host, "name": name, "value": value, "time": now - every * (len(values) - i)}
            for i, value in enumerate(values)]
    response = post("/api/v1/metrics", json.dumps(body), token=token, content_type="application/json")
    assert response.status_code in (200, 204), response.content


def test_the_preview_counts_firings_over_the_last_hours_without_saving(editor, org, write_token):
    _ingest(write_token, "temp_c", "web-1", [50, 95, 96, 50, 50, 97, 50, 91, 92, 93])  # 3 crossings of 90
    _ingest(write_token, "temp_c", "web-2", [40] * 10)
    response = _client(editor).post(reverse("alerts:rule-create", args=[org.slug]), rule_data(
        metric="temp_c", label_matchers="", critical="95", warning="90", window_seconds="60", reducer="max",
        for_seconds="0", preview="1"))
    assert response.status_code == 200
    preview = response.context["preview"]
    assert (preview.fired, preview.critical, preview.series_fired, preview.series) == (3, 2, 1, 2)
    assert "would have fired <strong>3 times</strong>" in response.content.decode()
    assert not AlertRule.objects.filter(organization=org).exists()
    assert not AuditEvent.objects.filter(organization=org, action="alert_rule.created").exists()


def test_the_preview_honours_the_pending_period(editor, org, write_token):
    _ingest(write_token, "temp_c", "web-1", [50, 95, 50, 95, 95, 95, 50])
    response = _client(editor).post(reverse("alerts:rule-create", args=[org.slug]), rule_data(
        metric="temp_c", label_matchers="", critical="90", warning="", window_seconds="60", for_seconds="120",
        reducer="max", preview="1"))
    assert response.context["preview"].fired == 1  # only the run lasting 2 minutes


def test_the_preview_shows_the_services_errors_instead(editor, org):
    response = _client(editor).post(reverse("alerts:rule-create", args=[org.slug]),
                                    rule_data(critical="80", warning="90", preview="1"))
    assert response.status_code == 400 and response.context["preview"] is None
    assert "warning" in response.context["form"].errors


def test_a_viewer_cannot_preview(member_ro, org):
    response = _client(member_ro).post(reverse("alerts:rule-create", args=[org.slug]), rule_data(preview="1"))
    assert response.status_code == 403


@pytest.mark.parametrize("field", ["host_names", "host_tags", "labels", "group_by"])
def test_a_nul_in_a_list_or_mapping_field_is_a_field_error(editor, org, field):
    """A NUL in ``host_names`` reached PostgreSQL's jsonb (a 500): CharField's own check ran on the parsed
    list, not on the typed text."""
    value = "team=o\x00ps" if field in ("host_tags", "labels") else "we\x00b"
    response = _client(editor).post(reverse("alerts:rule-create", args=[org.slug]), rule_data(**{field: value}))
    assert response.status_code == 400
    assert "Null characters are not allowed." in response.context["form"].errors[field]
