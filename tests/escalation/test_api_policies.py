"""/api/v1/escalation-policies, /api/v1/escalation-routes and /api/v1/contact-methods: CRUD through the
audited services, the role and token-scope matrices, 400s naming the field, other organizations' objects
as 404, and members managing only their own contact methods."""

from __future__ import annotations

from typing import Any

import pytest

from apps.alerts.models import NotificationChannel
from apps.audit.models import AuditEvent
from apps.core.roles import Role
from apps.escalation.models import ContactMethod, EscalationPolicy, RulePolicy
from apps.escalation.policy_services import StepData
from apps.organizations.models import AgentToken
from tests.alerts.factories import AlertRuleFactory, NotificationChannelFactory
from tests.escalation.factories import OnCallScheduleFactory
from tests.escalation.factories_policies import EscalationPolicyFactory, contact, policy_with_steps

pytestmark = pytest.mark.django_db


def _policy_body(schedule: Any, channel: Any, **extra: Any) -> dict[str, Any]:
    return {"name": "Primary", "repeat_count": 12, "ack_timeout_seconds": 1800, "steps": [
        {"action": "notify_schedule", "schedule": str(schedule.public_id), "wait_seconds": 300},
        {"action": "notify_user", "users": ["alice"], "wait_seconds": 600},
        {"action": "notify_channel", "channels": [str(channel.public_id)]}], **extra}


def test_policy_crud_with_steps_inline_is_audited(api_client: Any, org: Any, owner: Any) -> None:
    client = api_client(user=owner)
    schedule, channel = OnCallScheduleFactory(organization=org), NotificationChannelFactory(organization=org)
    created = client.post("/api/v1/escalation-policies", _policy_body(schedule, channel), format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["repeat_count"] == 12 and [s["action"] for s in body["steps"]] == [
        "notify_schedule", "notify_user", "notify_channel"]
    assert body["steps"][0]["schedule"] == str(schedule.public_id) and body["steps"][1]["users"] == ["alice"]
    policy_id = body["id"]
    assert AuditEvent.objects.filter(action="escalation.policy_created", object_id=policy_id).exists()

    patched = client.patch(f"/api/v1/escalation-policies/{policy_id}",
                           {"steps": [{"action": "notify_user", "users": ["alice"]}]}, format="json")
    assert patched.status_code == 200 and len(patched.json()["steps"]) == 1
    assert patched.json()["repeat_count"] == 12
    assert AuditEvent.objects.filter(action="escalation.policy_updated", object_id=policy_id).exists()
    assert [p["id"] for p in client.get("/api/v1/escalation-policies").json()["results"]] == [policy_id]
    assert client.delete(f"/api/v1/escalation-policies/{policy_id}").status_code == 204
    assert not EscalationPolicy.objects.exists()
    assert AuditEvent.objects.filter(action="escalation.policy_deleted", object_id=policy_id).exists()


@pytest.mark.parametrize(("body", "field"), [
    ({"name": "x", "steps": [{"action": "notify_schedule"}]}, "steps"),
    ({"name": "x", "steps": [{"action": "notify_user", "users": ["nobody"]}]}, "steps"),
    ({"name": "x", "steps": [{"action": "page_everyone"}]}, "steps"),
    ({"name": "x", "repeat_count": -1}, "repeat_count"),
    ({"name": ""}, "name"),
])
def test_bad_policies_are_400s_naming_the_field(api_client: Any, org: Any, owner: Any, body: dict,
                                                field: str) -> None:
    response = api_client(user=owner).post("/api/v1/escalation-policies", body, format="json")
    assert response.status_code == 400 and field in response.json(), response.json()


def test_a_repeat_count_has_no_arbitrary_cap(api_client: Any, org: Any, owner: Any) -> None:
    response = api_client(user=owner).post("/api/v1/escalation-policies", {"name": "x", "repeat_count": 1000},
                                           format="json")
    assert response.status_code == 201 and response.json()["repeat_count"] == 1000


def test_another_organizations_schedule_or_channel_is_not_found(api_client: Any, org: Any, other_org: Any,
                                                                 owner: Any) -> None:
    theirs = OnCallScheduleFactory(organization=other_org)
    body = {"name": "x", "steps": [{"action": "notify_schedule", "schedule": str(theirs.public_id)}]}
    response = api_client(user=owner).post("/api/v1/escalation-policies", body, format="json")
    assert response.status_code == 400 and "steps" in response.json()
    channel = NotificationChannelFactory(organization=other_org)
    body = {"name": "x", "steps": [{"action": "notify_channel", "channels": [str(channel.public_id)]}]}
    assert api_client(user=owner).post("/api/v1/escalation-policies", body, format="json").status_code == 400


def test_other_organizations_objects_are_404(api_client: Any, org: Any, other_org: Any, owner: Any,
                                             other_org_user: Any) -> None:
    policy = EscalationPolicyFactory(organization=other_org)
    route = RulePolicy.objects.create(organization=other_org, rule=AlertRuleFactory(organization=other_org),
                                      policy=policy)
    method = contact(other_org, other_org_user)
    client = api_client(user=owner)
    for url in (f"/api/v1/escalation-policies/{policy.public_id}", f"/api/v1/escalation-routes/{route.public_id}",
                f"/api/v1/contact-methods/{method.public_id}"):
        assert client.get(url).status_code == 404
        assert client.patch(url, {}, format="json").status_code == 404
        assert client.delete(url).status_code == 404
    assert client.get("/api/v1/escalation-policies").json()["results"] == []
    assert client.get("/api/v1/contact-methods").json()["results"] == []


@pytest.mark.parametrize(("role", "read", "write", "delete"), [
    (Role.VIEWER, 200, 403, 403), (Role.EDITOR, 200, 201, 403), (Role.ADMIN, 200, 201, 204),
    (Role.OWNER, 200, 201, 204)])
def test_policy_role_matrix(api_client: Any, org: Any, user_with_role: Any, role: str, read: int, write: int,
                            delete: int) -> None:
    client = api_client(user=user_with_role(role))
    policy = EscalationPolicyFactory(organization=org)
    assert client.get("/api/v1/escalation-policies").status_code == read
    assert client.post("/api/v1/escalation-policies", {"name": "new"}, format="json").status_code == write
    assert client.delete(f"/api/v1/escalation-policies/{policy.public_id}").status_code == delete


@pytest.mark.parametrize(("scope", "read", "write"), [
    (AgentToken.Scope.CONFIG, 200, 201), (AgentToken.Scope.READ, 200, 403), (AgentToken.Scope.WRITE, 403, 403)])
def test_token_scopes(api_client: Any, org: Any, owner: Any, make_token: Any, scope: str, read: int,
                      write: int) -> None:
    client = api_client(token=make_token(scope)[1])
    for url, body in (("/api/v1/escalation-policies", {"name": "p"}),
                      ("/api/v1/contact-methods", {"user": "alice", "kind": "email", "address": "a@example.com"})):
        assert client.get(url).status_code == read
        assert client.post(url, body, format="json").status_code == write


def test_routing_a_rule_to_a_policy(api_client: Any, org: Any, other_org: Any, editor: Any, admin_member: Any) -> None:
    rule, policy = AlertRuleFactory(organization=org), EscalationPolicyFactory(organization=org)
    client = api_client(user=editor)
    created = client.post("/api/v1/escalation-routes", {"rule": str(rule.public_id),
                                                        "policy": str(policy.public_id)}, format="json")
    assert created.status_code == 201, created.json()
    assert RulePolicy.objects.get(rule=rule).policy == policy
    again = client.post("/api/v1/escalation-routes", {"rule": str(rule.public_id), "policy": str(policy.public_id)},
                        format="json")
    assert again.status_code == 400 and "rule" in again.json()
    theirs = AlertRuleFactory(organization=other_org)
    foreign = client.post("/api/v1/escalation-routes", {"rule": str(theirs.public_id),
                                                        "policy": str(policy.public_id)}, format="json")
    assert foreign.status_code == 400 and "rule" in foreign.json()
    second = EscalationPolicyFactory(organization=org)
    moved = client.patch(f"/api/v1/escalation-routes/{created.json()['id']}", {"policy": str(second.public_id)},
                         format="json")
    assert moved.status_code == 200 and RulePolicy.objects.get(rule=rule).policy == second
    assert AuditEvent.objects.filter(action__in=["escalation.route_created", "escalation.route_updated"]).count() == 2
    assert api_client(user=admin_member).delete(f"/api/v1/escalation-routes/{created.json()['id']}").status_code \
        == 204


def test_members_manage_their_own_contact_methods_and_admins_everyones(
        api_client: Any, org: Any, owner: Any, member_ro: Any, editor: Any) -> None:
    bob = api_client(user=member_ro)
    created = bob.post("/api/v1/contact-methods", {"kind": "webhook", "url": "https://hooks.example.com/bob",
                                                   "delay_seconds": 300, "verified": True}, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["user"] == "bob" and created.json()["verified"] is False  # cannot vouch for itself
    method = ContactMethod.objects.get(public_id=created.json()["id"])
    assert method.channel is not None and method.channel.url == "https://hooks.example.com/bob"
    assert method.channel.kind == "webhook" and method.channel.organization_id == org.pk

    assert bob.post("/api/v1/contact-methods", {"user": "erin", "kind": "email", "address": "e@example.com"},
                    format="json").status_code == 403
    erins = contact(org, editor, kind="email")
    assert [m["id"] for m in bob.get("/api/v1/contact-methods").json()["results"]] == [created.json()["id"]]
    assert bob.get(f"/api/v1/contact-methods/{erins.public_id}").status_code == 403
    assert bob.patch(f"/api/v1/contact-methods/{erins.public_id}", {"delay_seconds": 1},
                     format="json").status_code == 403

    admin = api_client(user=owner)
    assert len(admin.get("/api/v1/contact-methods").json()["results"]) == 2
    verified = admin.patch(f"/api/v1/contact-methods/{created.json()['id']}", {"verified": True}, format="json")
    assert verified.status_code == 200 and verified.json()["verified"] is True
    moved = bob.patch(f"/api/v1/contact-methods/{created.json()['id']}", {"url": "https://hooks.example.com/b2"},
                      format="json")
    assert moved.status_code == 200 and moved.json()["verified"] is False  # a new destination is unconfirmed
    bad = bob.post("/api/v1/contact-methods", {"kind": "email"}, format="json")
    assert bad.status_code == 400 and "address" in bad.json()

    channel_id = ContactMethod.objects.get(public_id=created.json()["id"]).channel_id
    assert bob.delete(f"/api/v1/contact-methods/{created.json()['id']}").status_code == 204
    assert NotificationChannel.objects.get(pk=channel_id).enabled is False  # kept for the ledger
    assert AuditEvent.objects.filter(action="escalation.contact_deleted").count() == 1


def test_policy_services_reject_a_step_without_its_target(org: Any) -> None:
    from django.core.exceptions import ValidationError
    with pytest.raises(ValidationError):
        policy_with_steps(org, [StepData("notify_user")])


def test_oncall_assignments_are_listed_per_organization_and_filtered(api_client: Any, org: Any, other_org: Any,
                                                                     owner: Any, member_ro: Any,
                                                                     make_token: Any) -> None:
    import uuid as uuid_

    from django.utils import timezone

    from apps.escalation.models import OnCallAssignment
    from tests.alerts.factories import AlertFactory
    alert, theirs = AlertFactory(organization=org), AlertFactory(organization=other_org)
    common = {"escalation_id": uuid_.uuid4(), "step_index": 0, "repeat": 0, "reason": "notify_user",
              "at": timezone.now()}
    OnCallAssignment.objects.create(organization=org, alert=alert, alert_public_id=alert.public_id,
                                    user=owner, username="alice", **common)
    OnCallAssignment.objects.create(organization=other_org, alert=theirs, alert_public_id=theirs.public_id,
                                    username="charlie", **common)
    rows = api_client(user=member_ro).get("/api/v1/oncall-assignments").json()["results"]
    assert [(r["user"], r["alert"]) for r in rows] == [("alice", str(alert.public_id))]
    client = api_client(token=make_token(AgentToken.Scope.READ)[1])
    assert client.get(f"/api/v1/oncall-assignments?alert={theirs.public_id}").json()["results"] == []
    assert len(client.get("/api/v1/oncall-assignments?user=alice").json()["results"]) == 1
    assert client.get("/api/v1/oncall-assignments?alert=nope").status_code == 400
    assert api_client(token=make_token(AgentToken.Scope.WRITE)[1]).get("/api/v1/oncall-assignments") \
        .status_code == 403
