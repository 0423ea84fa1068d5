"""``/api/v1/integrations``: CRUD through audited services, the token shown once (create, rotate-token),
roles and token scopes, other organizations' integrations 404; the external rule behind each integration
is never evaluated and cannot be made by hand; the admin writes through the services too."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.utils import timezone

from apps.alerts.choices import IntegrationKind, RuleKind
from apps.alerts.models import Alert, AlertRule, Integration
from apps.audit.models import AuditEvent
from apps.core.roles import Role
from tests.alerts.factories import AlertRuleFactory, NotificationChannelFactory
from tests.alerts.factories_inbound import alertmanager_body, make_integration
from tests.organizations.factories import UserFactory

pytestmark = pytest.mark.django_db

BODY = {"name": "team prometheus", "kind": "alertmanager"}


def _status(allowed: bool, ok: int) -> int:
    return ok if allowed else 403


def test_create_shows_the_token_and_url_once_and_the_token_works(api_client, editor, org, settings):
    settings.FIBERSTACK_BASE_URL = "https://fs.example.com/"
    channel = NotificationChannelFactory(organization=org)
    client = api_client(user=editor)
    response = client.post("/api/v1/integrations", {**BODY, "channels": [str(channel.public_id)],
                                                    "group_by": ["alertname", "cluster"], "repeat_interval": 600},
                           format="json")

    assert response.status_code == 201, response.content
    data = response.json()
    integration = Integration.objects.get(public_id=data["id"])
    url = f"https://fs.example.com/api/v1/integrations/{integration.public_id}/alertmanager"
    assert data["url"] == url and data["url_with_token"] == f"{url}/{data['token']}"
    assert data["token"].startswith(f"fst_{integration.token_prefix}_")
    assert (data["channels"], data["group_by"], data["repeat_interval"]) == (
        [str(channel.public_id)], ["alertname", "cluster"], 600)
    rule = integration.rule
    assert (rule.kind, rule.system_key, rule.name) == (RuleKind.EXTERNAL, f"integration:{integration.public_id}",
                                                       "team prometheus (integration)")
    assert list(rule.channels.all()) == [channel] and rule.repeat_interval_seconds == 600
    assert data["token"] not in json.dumps(list(AuditEvent.objects.values("changes")))  # never stored
    assert AuditEvent.objects.filter(action="integration.created", object_id=str(integration.public_id)).exists()

    shown = client.get(f"/api/v1/integrations/{integration.public_id}").json()
    assert "token" not in shown and "url_with_token" not in shown and shown["url"] == url
    assert client.get("/api/v1/integrations").json()["results"][0]["id"] == data["id"]
    door = client.post(f"/api/v1/integrations/{integration.public_id}/alertmanager",
                       alertmanager_body({"status": "firing", "labels": {"alertname": "X"}}), format="json",
                       HTTP_AUTHORIZATION=f"Bearer {data['token']}")
    assert door.status_code == 200 and door.json()["opened"] == 1


def test_the_default_group_by_is_alertname_and_generic_urls_point_at_the_generic_door(api_client, editor):
    data = api_client(user=editor).post("/api/v1/integrations", {"name": "cron", "kind": "generic"},
                                        format="json").json()
    assert data["group_by"] == ["alertname"] and data["url"].endswith(f"/api/v1/integrations/{data['id']}/generic")


def test_update_changes_the_rule_settings_and_is_audited(api_client, editor, org):
    integration, _ = make_integration(org)
    channel = NotificationChannelFactory(organization=org)
    response = api_client(user=editor).patch(
        f"/api/v1/integrations/{integration.public_id}",
        {"name": "renamed", "enabled": False, "channels": [str(channel.public_id)], "group_by": []}, format="json")

    assert response.status_code == 200, response.content
    integration.refresh_from_db()
    rule = integration.rule
    assert (integration.name, integration.enabled) == ("renamed", False)
    assert (rule.name, rule.enabled, rule.group_by, list(rule.channels.all())) == (
        "renamed (integration)", False, [], [channel])
    event = AuditEvent.objects.get(action="integration.updated")
    assert event.changes["name"] == ["prometheus", "renamed"]
    assert AuditEvent.objects.filter(action="alert_rule.updated", object_id=str(rule.public_id)).exists()


@pytest.mark.parametrize(("body", "field"), [
    ({"name": "", "kind": "alertmanager"}, "name"),
    ({"name": "x", "kind": "pagerduty"}, "kind"),
    ({"name": "x", "kind": "generic", "group_by": ["not a label"]}, "group_by"),
    ({"name": "x", "kind": "generic", "repeat_interval": -1}, "repeat_interval"),
    ({"name": "x", "kind": "generic", "channels": ["not-a-uuid"]}, "channels"),
    ({"name": "prometheus", "kind": "generic"}, "name"),
])
def test_bad_integrations_are_400_naming_the_field(api_client, editor, org, body, field):
    make_integration(org)
    response = api_client(user=editor).post("/api/v1/integrations", body, format="json")
    assert response.status_code == 400 and field in response.json(), response.json()
    assert Integration.objects.count() == 1


def test_the_kind_cannot_change(api_client, editor, org):
    integration, _ = make_integration(org)
    response = api_client(user=editor).patch(f"/api/v1/integrations/{integration.public_id}",
                                             {"kind": "generic"}, format="json")
    assert response.status_code == 400 and "kind" in response.json()


def test_a_channel_of_another_organization_is_a_400(api_client, editor, other_org):
    theirs = NotificationChannelFactory(organization=other_org)
    response = api_client(user=editor).post("/api/v1/integrations", {**BODY, "channels": [str(theirs.public_id)]},
                                            format="json")
    assert response.status_code == 400 and "channels" in response.json()


def test_rotate_token_shows_the_new_token_once_and_the_old_one_stops(api_client, editor, org):
    integration, old = make_integration(org)
    response = api_client(user=editor).post(f"/api/v1/integrations/{integration.public_id}/rotate-token")
    assert response.status_code == 200
    new = response.json()["token"]
    assert new != old and response.json()["token_rotated_at"]
    path = f"/api/v1/integrations/{integration.public_id}/alertmanager"
    body = alertmanager_body({"status": "firing", "labels": {"alertname": "X"}})
    assert api_client(token=old).post(path, body, format="json").status_code == 401
    assert api_client().post(path, body, format="json", HTTP_AUTHORIZATION=f"Bearer {new}").status_code == 200
    event = AuditEvent.objects.get(action="integration.token_rotated")
    assert new not in json.dumps(event.changes) and old not in json.dumps(event.changes)


def test_delete_removes_the_integration_its_rule_and_alerts(api_client, admin_member, org):
    integration, token = make_integration(org)
    api_client().post(f"/api/v1/integrations/{integration.public_id}/alertmanager",
                      alertmanager_body({"status": "firing", "labels": {"alertname": "X"}}), format="json",
                      HTTP_AUTHORIZATION=f"Bearer {token}")
    assert Alert.objects.count() == 1
    response = api_client(user=admin_member).delete(f"/api/v1/integrations/{integration.public_id}")
    assert response.status_code == 204
    assert not Integration.objects.exists() and not AlertRule.objects.filter(pk=integration.rule_id).exists()
    assert not Alert.objects.exists()
    assert AuditEvent.objects.filter(action="integration.deleted", object_id=str(integration.public_id)).exists()


# --- roles, scopes, organizations ------------------------------------------------------------------------


@pytest.mark.parametrize(("role", "read", "write", "delete"), [
    (Role.VIEWER, True, False, False), (Role.EDITOR, True, True, False),
    (Role.ADMIN, True, True, True), (Role.OWNER, True, True, True),
])
def test_integration_endpoints_follow_the_role_matrix(api_client, user_with_role, org, role, read, write, delete):
    client = api_client(user=user_with_role(role))
    integration, _ = make_integration(org)
    path = f"/api/v1/integrations/{integration.public_id}"
    assert client.get("/api/v1/integrations").status_code == _status(read, 200)
    assert client.get(path).status_code == _status(read, 200)
    assert client.post("/api/v1/integrations", BODY, format="json").status_code == _status(write, 201)
    assert client.patch(path, {"enabled": False}, format="json").status_code == _status(write, 200)
    assert client.put(path, {"name": "put", "kind": "alertmanager"}, format="json").status_code == _status(write, 200)
    assert client.post(f"{path}/rotate-token").status_code == _status(write, 200)
    assert client.delete(path).status_code == _status(delete, 204)
    assert Integration.objects.filter(pk=integration.pk).exists() is not delete


@pytest.mark.parametrize(("scope", "read", "write"), [
    ("ingest", False, False), ("write", False, False), ("read", True, False), ("config", True, True),
])
def test_tokens_follow_their_scope(api_client, make_token, org, scope, read, write):
    integration, _ = make_integration(org)
    client = api_client(token=make_token(scope)[1])
    path = f"/api/v1/integrations/{integration.public_id}"
    assert client.get("/api/v1/integrations").status_code == _status(read, 200)
    assert client.get(path).status_code == _status(read, 200)
    created = client.post("/api/v1/integrations", BODY, format="json")
    assert created.status_code == _status(write, 201)
    assert client.post(f"{path}/rotate-token").status_code == _status(write, 200)
    assert client.delete(path).status_code == _status(write, 204)
    if scope == "read":
        assert "config" in json.dumps(created.json())  # the refusal names the scope needed
    if write:
        event = AuditEvent.objects.filter(action="integration.created").latest("id")
        assert event.actor_repr.startswith("token ")


@pytest.mark.parametrize("action", ["get", "patch", "put", "delete", "rotate"])
def test_other_org_gets_404(api_client, owner, other_org, action):
    theirs, _ = make_integration(other_org)
    client = api_client(user=owner)
    path = f"/api/v1/integrations/{theirs.public_id}"
    response = {
        "get": lambda: client.get(path),
        "patch": lambda: client.patch(path, {"enabled": False}, format="json"),
        "put": lambda: client.put(path, {"name": "mine", "kind": "alertmanager"}, format="json"),
        "delete": lambda: client.delete(path),
        "rotate": lambda: client.post(f"{path}/rotate-token"),
    }[action]()
    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.enabled and theirs.name == "prometheus"
    assert client.get("/api/v1/integrations").json()["results"] == []


def test_other_org_gets_404_for_a_config_token(api_client, make_token, other_org):
    theirs, _ = make_integration(other_org)
    client = api_client(token=make_token("config")[1])
    assert client.get(f"/api/v1/integrations/{theirs.public_id}").status_code == 404
    assert client.post(f"/api/v1/integrations/{theirs.public_id}/rotate-token").status_code == 404


# --- the external rule -------------------------------------------------------------------------------------


def test_external_rules_are_never_due_for_evaluation(org):
    integration, _ = make_integration(org)
    ordinary = AlertRuleFactory(organization=org, next_evaluation_at=timezone.now())
    AlertRule.objects.filter(pk=integration.rule_id).update(next_evaluation_at=timezone.now())
    due = list(AlertRule.objects.due(timezone.now() + timezone.timedelta(seconds=1)))
    assert due == [ordinary]
    assert integration.rule not in AlertRule.objects.evaluated()


def test_an_external_rule_cannot_be_made_through_the_rules_api(api_client, editor, org):
    response = api_client(user=editor).post("/api/v1/rules", {"name": "by hand", "kind": "external"}, format="json")
    assert response.status_code == 400 and "kind" in response.json()
    rule = AlertRuleFactory(organization=org)
    response = api_client(user=editor).patch(f"/api/v1/rules/{rule.public_id}", {"kind": "external"}, format="json")
    assert response.status_code == 400 and "kind" in response.json()


def test_the_integration_rule_can_be_tuned_but_not_deleted_through_the_rules_api(api_client, owner, org):
    integration, _ = make_integration(org)
    client = api_client(user=owner)
    path = f"/api/v1/rules/{integration.rule.public_id}"
    assert client.patch(path, {"repeat_interval": 60}, format="json").status_code == 200
    assert client.delete(path).status_code == 409
    assert Integration.objects.filter(pk=integration.pk).exists()


# --- admin ---------------------------------------------------------------------------------------------


@pytest.fixture
def admin_client_() -> Client:
    client = Client()
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


def test_admin_adds_changes_rotates_and_deletes_through_the_services(admin_client_, org):
    response = admin_client_.post("/admin/alerts/integration/add/", {
        "organization": org.pk, "name": "from admin", "kind": IntegrationKind.GENERIC, "enabled": "on"},
        follow=True)
    assert response.status_code == 200
    integration = Integration.objects.get(name="from admin")
    assert "(shown once): fst_" in response.content.decode()
    assert integration.rule.kind == RuleKind.EXTERNAL
    assert admin_client_.get("/admin/alerts/integration/").status_code == 200
    change = f"/admin/alerts/integration/{integration.pk}/change/"
    assert admin_client_.get(change).status_code == 200
    response = admin_client_.post(change, {"name": "renamed", "enabled": ""})
    assert response.status_code == 302, response.content.decode()[:2000]
    integration.refresh_from_db()
    assert (integration.name, integration.enabled, integration.rule.name) == ("renamed", False,
                                                                              "renamed (integration)")
    prefix = integration.token_prefix
    admin_client_.post("/admin/alerts/integration/", {"action": "rotate_tokens",
                                                      "_selected_action": [integration.pk]})
    integration.refresh_from_db()
    assert integration.token_prefix != prefix
    admin_client_.post(f"/admin/alerts/integration/{integration.pk}/delete/", {"post": "yes"})
    assert not Integration.objects.exists()
    assert [e.action for e in AuditEvent.objects.filter(action__startswith="integration.").order_by("id")] == [
        "integration.created", "integration.updated", "integration.token_rotated", "integration.deleted"]


def test_admin_refuses_a_duplicate_name(admin_client_, org):
    make_integration(org)
    response = admin_client_.post("/admin/alerts/integration/add/", {
        "organization": org.pk, "name": "prometheus", "kind": "generic", "enabled": "on"})
    assert response.status_code == 200 and "already exists" in response.content.decode()
