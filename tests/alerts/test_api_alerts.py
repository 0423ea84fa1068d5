"""/api/v1/alerts: filters, the detail's timeline and ledger, acknowledge/resolve (409 in the wrong state),
the role and scope matrix, and organization isolation."""

from __future__ import annotations

from typing import Any

import pytest

from apps.alerts import delivery
from apps.alerts.models import Alert
from apps.alerts.services.lifecycle import record_outcomes
from apps.audit.models import AuditEvent
from apps.core.roles import Role
from tests.alerts.factories_lifecycle import at, breach, rule_with_channels

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_delivery(monkeypatch: Any) -> None:
    monkeypatch.setattr(delivery, "_send", lambda ids: None)


def fire(org: Any, *hosts: str, severity: str = "critical", **rule_fields: Any) -> list[Alert]:
    rule = rule_with_channels(org, **rule_fields)
    record_outcomes(rule=rule, outcomes=[breach(host=h, severity=severity) for h in hosts], at=at(0),
                    complete=True)
    return list(Alert.objects.filter(rule=rule).order_by("labels__host"))


def ids(response: Any) -> set[str]:
    return {a["id"] for a in response.json()["results"]}


def test_list_filters_by_state_severity_and_rule(api_client, owner, org):
    a, b = fire(org, "a", "b")
    [w] = fire(org, "w", severity="warning")
    Alert.objects.filter(pk=b.pk).update(state="acknowledged")
    Alert.objects.filter(pk=w.pk).update(state="resolved")
    client = api_client(user=owner)
    assert ids(client.get("/api/v1/alerts")) == {str(x.public_id) for x in (a, b, w)}
    assert ids(client.get("/api/v1/alerts?state=firing")) == {str(a.public_id)}
    assert ids(client.get("/api/v1/alerts?state=firing,acknowledged")) == {str(a.public_id), str(b.public_id)}
    assert ids(client.get("/api/v1/alerts?severity=warning")) == {str(w.public_id)}
    assert ids(client.get(f"/api/v1/alerts?rule={a.rule.public_id}")) == {str(a.public_id), str(b.public_id)}
    row = next(r for r in client.get("/api/v1/alerts?state=firing").json()["results"])
    assert row["rule"] == {"id": str(a.rule.public_id), "name": a.rule.name}
    assert row["labels"]["host"] == "a" and row["value"] == 95.0 and "events" not in row


@pytest.mark.parametrize(("query", "parameter"), [("state=burning", "state"), ("state=firing,nope", "state"),
                                                  ("severity=info", "severity"), ("rule=12", "rule")])
def test_bad_filters_are_a_400_naming_the_parameter(api_client, owner, org, query, parameter):
    response = api_client(user=owner).get(f"/api/v1/alerts?{query}")
    assert response.status_code == 400
    assert list(response.json()) == [parameter]


def test_detail_has_the_timeline_and_the_ledger(api_client, owner, org):
    [alert] = fire(org, "a")
    response = api_client(user=owner).get(f"/api/v1/alerts/{alert.public_id}")
    assert response.status_code == 200
    body = response.json()
    assert [(e["from_state"], e["to_state"]) for e in body["events"]] == [("", "firing")]
    [note] = body["notifications"]
    assert note["kind"] == "firing" and note["status"] == "pending" and note["channel"]
    assert "payload" not in note


def test_the_ledger_lists_the_messages_that_named_the_alert(api_client, owner, org):
    a, b = fire(org, "a", "b", group_by=["host"])  # one group each
    record_outcomes(rule=a.rule, outcomes=[breach(host="a")], at=at(10), complete=True)  # b resolves
    client = api_client(user=owner)
    assert [n["kind"] for n in client.get(f"/api/v1/alerts/{a.public_id}").json()["notifications"]] == ["firing"]
    kinds_b = [n["kind"] for n in client.get(f"/api/v1/alerts/{b.public_id}").json()["notifications"]]
    assert kinds_b == ["resolved", "firing"]


def test_acknowledge_and_resolve_through_the_api(api_client, editor, org):
    [alert] = fire(org, "a")
    client = api_client(user=editor)
    response = client.post(f"/api/v1/alerts/{alert.public_id}/acknowledge")
    assert response.status_code == 200, response.content
    assert response.json()["state"] == "acknowledged" and response.json()["acknowledged_by"] == "erin"
    again = client.post(f"/api/v1/alerts/{alert.public_id}/acknowledge")
    assert again.status_code == 409
    assert again.json() == {"detail": "The alert is acknowledged; only a firing alert can be acknowledged.",
                            "state": "acknowledged"}
    response = client.post(f"/api/v1/alerts/{alert.public_id}/resolve/")
    assert response.status_code == 200 and response.json()["state"] == "resolved"
    assert client.post(f"/api/v1/alerts/{alert.public_id}/resolve").status_code == 409
    assert client.post(f"/api/v1/alerts/{alert.public_id}/acknowledge").json()["state"] == "resolved"
    assert list(AuditEvent.objects.filter(object_id=str(alert.public_id)).values_list("action", "actor_user_id")
                .order_by("id")) == [("alert.acknowledged", editor.pk), ("alert.resolved", editor.pk)]


ROLES = [(Role.VIEWER, False), (Role.EDITOR, True), (Role.ADMIN, True), (Role.OWNER, True)]


@pytest.mark.parametrize(("role", "may_act"), ROLES)
def test_the_role_matrix(api_client, user_with_role, org, role, may_act):
    a, b = fire(org, "a", "b")
    client = api_client(user=user_with_role(role))
    assert client.get("/api/v1/alerts").status_code == 200
    assert client.get(f"/api/v1/alerts/{a.public_id}").status_code == 200
    assert client.post(f"/api/v1/alerts/{a.public_id}/acknowledge").status_code == (200 if may_act else 403)
    assert client.post(f"/api/v1/alerts/{b.public_id}/resolve").status_code == (200 if may_act else 403)
    assert Alert.objects.get(pk=b.pk).state == ("resolved" if may_act else "firing")


@pytest.mark.parametrize(("scope", "read", "act"), [("ingest", False, False), ("read", True, False),
                                                    ("config", True, True)])
def test_tokens_follow_their_scope(api_client, make_token, org, scope, read, act):
    a, b = fire(org, "a", "b")
    client = api_client(token=make_token(scope)[1])
    assert client.get("/api/v1/alerts").status_code == (200 if read else 403)
    assert client.get(f"/api/v1/alerts/{a.public_id}").status_code == (200 if read else 403)
    response = client.post(f"/api/v1/alerts/{a.public_id}/acknowledge")
    assert response.status_code == (200 if act else 403)
    if not act:
        assert "config" in response.content.decode()
    assert client.post(f"/api/v1/alerts/{b.public_id}/resolve").status_code == (200 if act else 403)
    if act:
        assert AuditEvent.objects.filter(action="alert.resolved", actor_type="token").count() == 1


def test_other_org_gets_404(api_client, org, other_org, other_org_user, owner, make_token):
    [theirs] = fire(other_org, "x")
    [ours] = fire(org, "y")
    for client in (api_client(user=owner), api_client(token=make_token("config")[1])):
        assert client.get(f"/api/v1/alerts/{theirs.public_id}").status_code == 404
        assert client.post(f"/api/v1/alerts/{theirs.public_id}/acknowledge").status_code == 404
        assert client.post(f"/api/v1/alerts/{theirs.public_id}/resolve").status_code == 404
        assert ids(client.get("/api/v1/alerts")) == {str(ours.public_id)}
    assert Alert.objects.get(pk=theirs.pk).state == "firing"
    outsider = api_client(user=other_org_user)
    assert outsider.get(f"/api/v1/alerts/{ours.public_id}").status_code == 404
    assert outsider.get("/api/v1/alerts/not-a-uuid").status_code == 404


def test_anonymous_is_refused(api_client, org):
    [alert] = fire(org, "a")
    assert api_client().get("/api/v1/alerts").status_code in (401, 403)
    assert api_client().post(f"/api/v1/alerts/{alert.public_id}/acknowledge").status_code in (401, 403)
