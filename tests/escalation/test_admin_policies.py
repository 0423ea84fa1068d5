"""Admin for escalation policies, routes and contact methods: writes go through the policy services
(validated like the API, audited); runs and on-call assignments are read-only."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from apps.audit.models import AuditEvent
from apps.escalation.models import ContactMethod, EscalationPolicy, RulePolicy
from tests.alerts.factories import AlertRuleFactory
from tests.escalation.factories import OnCallScheduleFactory
from tests.escalation.factories_policies import EscalationPolicyFactory, contact
from tests.organizations.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def root() -> Client:
    client = Client()
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


def test_admin_adds_a_policy_with_steps_through_the_service(root: Client, org: Any, owner: Any) -> None:
    schedule = OnCallScheduleFactory(organization=org)
    steps = [{"action": "notify_schedule", "schedule": str(schedule.public_id), "wait_seconds": 300},
             {"action": "notify_user", "users": ["alice"]}]
    response = root.post("/admin/escalation/escalationpolicy/add/", {
        "organization": org.pk, "name": "From admin", "description": "", "repeat_count": 2,
        "ack_timeout_seconds": 600, "steps_json": json.dumps(steps)})
    assert response.status_code == 302, response.content[:3000]
    policy = EscalationPolicy.objects.get(name="From admin")
    assert [(s.action, s.wait_seconds) for s in policy.steps.order_by("position")] == [
        ("notify_schedule", 300), ("notify_user", 0)]
    assert AuditEvent.objects.get(action="escalation.policy_created").actor_user.username == "root"
    page = root.get(f"/admin/escalation/escalationpolicy/{policy.pk}/change/")
    assert page.status_code == 200 and str(schedule.public_id).encode() in page.content


def test_admin_refuses_bad_steps_with_a_form_error(root: Client, org: Any, other_org_user: Any) -> None:
    response = root.post("/admin/escalation/escalationpolicy/add/", {
        "organization": org.pk, "name": "x", "repeat_count": 0, "ack_timeout_seconds": 0,
        "steps_json": json.dumps([{"action": "notify_user", "users": ["charlie"]}])})
    assert response.status_code == 200 and b"charlie" in response.content
    assert not EscalationPolicy.objects.exists()


def test_admin_routes_a_rule_and_manages_contact_methods(root: Client, org: Any, owner: Any) -> None:
    rule, policy = AlertRuleFactory(organization=org), EscalationPolicyFactory(organization=org)
    response = root.post("/admin/escalation/rulepolicy/add/", {"rule": rule.pk, "policy": policy.pk})
    assert response.status_code == 302, response.content[:3000]
    assert RulePolicy.objects.get(rule=rule).policy == policy
    response = root.post("/admin/escalation/contactmethod/add/", {
        "organization": org.pk, "user": owner.pk, "kind": "slack", "url": "https://hooks.slack.com/x",
        "address": "", "delay_seconds": 300, "enabled": "on", "verified": "on"})
    assert response.status_code == 302, response.content[:3000]
    method = ContactMethod.objects.get(user=owner)
    assert method.verified and method.channel is not None and method.channel.kind == "slack"
    missing = root.post("/admin/escalation/contactmethod/add/", {
        "organization": org.pk, "user": owner.pk, "kind": "email", "address": "", "url": "", "delay_seconds": 0})
    assert missing.status_code == 200 and ContactMethod.objects.count() == 1
    assert set(AuditEvent.objects.filter(action__startswith="escalation.").values_list("action", flat=True)) == {
        "escalation.route_created", "escalation.contact_created"}


def test_runs_and_assignments_are_read_only(root: Client, org: Any, owner: Any) -> None:
    contact(org, owner)
    assert root.get("/admin/escalation/escalationrun/").status_code == 200
    assert root.get("/admin/escalation/oncallassignment/").status_code == 200
    assert root.get("/admin/escalation/escalationrun/add/").status_code == 403


def test_admin_adds_and_edits_group_routes_through_the_service(root: Client, org: Any, other_org: Any) -> None:
    from apps.escalation.models import GroupRoute

    policy = EscalationPolicyFactory(organization=org)
    theirs = EscalationPolicyFactory(organization=other_org)
    base = {"organization": org.pk, "name": "storage", "position": 2, "policy": policy.pk, "enabled": "on"}
    bad = root.post("/admin/escalation/grouproute/add/", {**base, "matchers": '["team"]'})
    assert bad.status_code == 200 and b"An object of label -&gt; value" in bad.content
    foreign = root.post("/admin/escalation/grouproute/add/", {**base, "matchers": "{}", "policy": theirs.pk})
    assert foreign.status_code == 200 and b"must belong to the route&#x27;s organization" in foreign.content
    assert not GroupRoute.objects.exists()

    added = root.post("/admin/escalation/grouproute/add/", {**base, "matchers": '{"team": "storage"}'})
    assert added.status_code == 302, added.content[:3000]
    route = GroupRoute.objects.get()
    assert route.matchers == {"team": "storage"} and route.position == 2
    changed = root.post(f"/admin/escalation/grouproute/{route.pk}/change/", {
        **base, "matchers": '{"team": "db"}', "enabled": ""})
    assert changed.status_code == 302, changed.content[:3000]
    route.refresh_from_db()
    assert route.matchers == {"team": "db"} and not route.enabled
    assert [e.actor_user.username for e in AuditEvent.objects.filter(
        action__in=["escalation.group_route_created", "escalation.group_route_updated"])] == ["root", "root"]
    assert root.post(f"/admin/escalation/grouproute/{route.pk}/delete/", {"post": "yes"}).status_code == 302
    assert AuditEvent.objects.filter(action="escalation.group_route_deleted").count() == 1
    assert root.get("/admin/escalation/groupescalationrun/").status_code == 200
    assert root.get("/admin/escalation/groupescalationrun/add/").status_code == 403  # engine records
