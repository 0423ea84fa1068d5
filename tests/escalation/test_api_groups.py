"""/api/v1/escalation-group-routes and /api/v1/group-escalations: route CRUD through the audited
services with 400s naming the field, other organizations' objects as 404, and acknowledging / resolving a
whole group through the API (every alert of it, the group's escalation standing down or ending)."""

from __future__ import annotations

from typing import Any

import pytest

from apps.alerts.models import Alert
from apps.audit.models import AuditEvent
from apps.escalation.choices import RunStatus
from apps.escalation.models import GroupEscalationRun, GroupRoute
from tests.alerts.factories import AlertRuleFactory
from tests.escalation.factories_policies import EscalationPolicyFactory, escalating_group

pytestmark = pytest.mark.django_db


def test_group_route_crud_is_audited_and_listed_in_order(api_client: Any, org: Any, owner: Any) -> None:
    client = api_client(user=owner)
    policy = EscalationPolicyFactory(organization=org)
    rule = AlertRuleFactory(organization=org)
    late = client.post("/api/v1/escalation-group-routes", {
        "name": "catch-all", "position": 10, "matchers": {}, "policy": str(policy.public_id)}, format="json")
    created = client.post("/api/v1/escalation-group-routes", {
        "name": "storage", "position": 1, "matchers": {"team": "storage", "env": "prod"}, "rule": str(rule.public_id),
        "policy": str(policy.public_id)}, format="json")
    assert late.status_code == 201 and created.status_code == 201, created.json()
    body = created.json()
    assert body["matchers"] == {"team": "storage", "env": "prod"} and body["rule"] == str(rule.public_id)
    assert [r["name"] for r in client.get("/api/v1/escalation-group-routes").json()["results"]] == [
        "storage", "catch-all"]  # the order routes are tried in

    patched = client.patch(f"/api/v1/escalation-group-routes/{body['id']}", {"enabled": False}, format="json")
    assert patched.status_code == 200 and patched.json()["rule"] == str(rule.public_id)  # PATCH keeps the rule
    cleared = client.patch(f"/api/v1/escalation-group-routes/{body['id']}", {"rule": None}, format="json")
    assert cleared.json()["rule"] is None
    assert client.delete(f"/api/v1/escalation-group-routes/{body['id']}").status_code == 204
    actions = list(AuditEvent.objects.filter(action__startswith="escalation.group_route").order_by("pk")
                   .values_list("action", flat=True))
    assert actions == ["escalation.group_route_created", "escalation.group_route_created",
                       "escalation.group_route_updated", "escalation.group_route_updated",
                       "escalation.group_route_deleted"]
    updated = AuditEvent.objects.filter(action="escalation.group_route_updated").order_by("pk").first()
    assert updated.actor_user == owner and updated.changes["enabled"] == [True, False]


@pytest.mark.parametrize(("body", "field"), [
    ({"matchers": ["team=storage"]}, "matchers"),
    ({"matchers": {"": "x"}}, "matchers"),
    ({"matchers": {"team": {"nested": 1}}}, "matchers"),
    ({"name": ""}, "name"),
    ({"name": "taken"}, "name"),
    ({"position": -1}, "position"),
    ({"policy": "not-a-uuid"}, "policy"),
])
def test_bad_group_routes_are_400s_naming_the_field(api_client: Any, org: Any, owner: Any, body: dict,
                                                    field: str) -> None:
    policy = EscalationPolicyFactory(organization=org)
    GroupRoute.objects.create(organization=org, name="taken", policy=policy)
    response = api_client(user=owner).post("/api/v1/escalation-group-routes", {
        "name": "new", "matchers": {"team": "db"}, "policy": str(policy.public_id), **body}, format="json")
    assert response.status_code == 400 and field in response.json(), response.json()


def test_other_organizations_routes_groups_and_policies_are_not_found(api_client: Any, org: Any, owner: Any,
                                                                     other_org: Any) -> None:
    client = api_client(user=owner)
    theirs = EscalationPolicyFactory(organization=other_org)
    their_route = GroupRoute.objects.create(organization=other_org, name="theirs", policy=theirs)
    their_group = escalating_group(other_org, theirs)
    assert client.get(f"/api/v1/escalation-group-routes/{their_route.public_id}").status_code == 404
    assert client.delete(f"/api/v1/escalation-group-routes/{their_route.public_id}").status_code == 404
    assert client.get(f"/api/v1/group-escalations/{their_group.public_id}").status_code == 404
    assert client.post(f"/api/v1/group-escalations/{their_group.public_id}/acknowledge").status_code == 404
    assert client.get("/api/v1/group-escalations").json()["results"] == []
    refused = client.post("/api/v1/escalation-group-routes", {
        "name": "mine", "policy": str(theirs.public_id)}, format="json")
    assert refused.status_code == 400 and "policy" in refused.json()
    refused = client.post("/api/v1/escalation-group-routes", {
        "name": "mine", "policy": str(EscalationPolicyFactory(organization=org).public_id),
        "rule": str(AlertRuleFactory(organization=other_org).public_id)}, format="json")
    assert refused.status_code == 400 and "rule" in refused.json()
    assert Alert.objects.filter(group=their_group, state="firing").count() == 1  # untouched


def test_acknowledging_a_group_acknowledges_its_alerts_and_stands_the_escalation_down(
        api_client: Any, org: Any, editor: Any, django_capture_on_commit_callbacks: Any) -> None:
    group = escalating_group(org, EscalationPolicyFactory(organization=org), alerts=3)
    client = api_client(user=editor)
    listed = client.get("/api/v1/group-escalations?status=active").json()["results"]
    assert [g["group"] for g in listed] == [str(group.public_id)] and listed[0]["group_labels"] == {"team": "storage"}
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/api/v1/group-escalations/{group.public_id}/acknowledge")
    assert response.status_code == 200, response.json()
    assert len(response.json()["alerts"]) == 3
    assert set(Alert.objects.filter(group=group).values_list("state", flat=True)) == {"acknowledged"}
    assert GroupEscalationRun.objects.get(group=group).status == RunStatus.ACKNOWLEDGED  # through the hook
    assert AuditEvent.objects.filter(action="alert.acknowledged").count() == 3
    assert AuditEvent.objects.get(action="escalation.group_acknowledged").actor_user == editor
    again = client.post(f"/api/v1/group-escalations/{group.public_id}/acknowledge")
    assert again.status_code == 409 and "no alert to acknowledge" in again.json()["detail"]

    with django_capture_on_commit_callbacks(execute=True):
        resolved = client.post(f"/api/v1/group-escalations/{group.public_id}/resolve")
    assert resolved.status_code == 200
    assert GroupEscalationRun.objects.get(group=group).status == RunStatus.ENDED
    assert client.get("/api/v1/group-escalations?status=bogus").status_code == 400


def test_a_viewer_may_look_but_not_acknowledge(api_client: Any, org: Any, member_ro: Any) -> None:
    group = escalating_group(org, EscalationPolicyFactory(organization=org))
    client = api_client(user=member_ro)
    assert client.get(f"/api/v1/group-escalations/{group.public_id}").status_code == 200
    assert client.post(f"/api/v1/group-escalations/{group.public_id}/acknowledge").status_code == 403
