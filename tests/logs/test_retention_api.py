"""``GET|PATCH|PUT /api/v1/logs/retention``: organization admins set how long logs and events are kept,
within the plan (a value above it is a 400 naming the field), audited; viewers and read tokens read it;
another organization's members reach only their own organization."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from apps.audit.models import AuditEvent
from apps.core.roles import Role
from apps.logs import retention
from apps.logs.models import LogRetention

pytestmark = pytest.mark.django_db
URL = "/api/v1/logs/retention"


def test_defaults_and_plan_limits_are_readable_by_viewers(api_client: Callable, member_ro: Any) -> None:
    response = api_client(user=member_ro).get(URL)
    assert response.status_code == 200
    assert response.json() == {"logs_days": None, "events_days": None,
                               "effective_days": {"logs": 30, "events": 90},
                               "default_days": {"logs": 30, "events": 90},
                               "plan": "free", "plan_max_days": {"logs": 30, "events": 90}}


def test_an_admin_shortens_retention_and_it_is_audited(api_client: Callable, admin_member: Any, org: Any) -> None:
    response = api_client(user=admin_member).patch(URL, {"logs_days": 7}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["logs_days"] == 7 and response.json()["events_days"] is None
    assert response.json()["effective_days"] == {"logs": 7, "events": 90}
    assert retention.retention_days(org.pk, "logs") == 7
    event = AuditEvent.objects.get(action="log_retention.updated")
    assert event.organization_id == org.pk and event.actor_user_id == admin_member.pk
    assert event.changes["logs_days"] == [None, 7]


def test_a_value_above_the_plan_is_refused_naming_the_field(api_client: Callable, owner: Any, org: Any) -> None:
    response = api_client(user=owner).patch(URL, {"logs_days": 10, "events_days": 91}, format="json")
    assert response.status_code == 400
    assert response.json() == {"events_days": ["The free plan keeps events for at most 90 days."]}
    assert not LogRetention.objects.exists() and not AuditEvent.objects.filter(action="log_retention.updated")


def test_a_bigger_plan_allows_more(api_client: Callable, owner: Any, org: Any) -> None:
    org.plan = "team"
    org.save()
    response = api_client(user=owner).patch(URL, {"logs_days": 90}, format="json")
    assert response.status_code == 200 and response.json()["effective_days"]["logs"] == 90
    assert api_client(user=owner).patch(URL, {"logs_days": 91}, format="json").json() == {
        "logs_days": ["The team plan keeps logs for at most 90 days."]}


@pytest.mark.parametrize(("body", "field"), [({"logs_days": 0}, "logs_days"), ({"events_days": "soon"}, "events_days"),
                                             ({"logs_days": 2.5}, "logs_days")])
def test_bad_values_are_a_400_naming_the_field(api_client: Callable, owner: Any, body: dict, field: str) -> None:
    response = api_client(user=owner).patch(URL, body, format="json")
    assert response.status_code == 400 and list(response.json()) == [field]


def test_put_replaces_and_null_goes_back_to_the_default(api_client: Callable, owner: Any, org: Any) -> None:
    client = api_client(user=owner)
    client.patch(URL, {"logs_days": 7, "events_days": 30}, format="json")
    assert client.put(URL, {"events_days": 20}, format="json").json()["effective_days"] == {"logs": 30, "events": 20}
    assert client.patch(URL, {"events_days": None}, format="json").json()["effective_days"]["events"] == 90
    assert AuditEvent.objects.filter(action="log_retention.updated").count() == 3


@pytest.mark.parametrize(("role", "status"), [(Role.VIEWER, 403), (Role.EDITOR, 403), (Role.ADMIN, 200),
                                              (Role.OWNER, 200)])
def test_who_may_change_retention(api_client: Callable, user_with_role: Callable, role: str, status: int) -> None:
    response = api_client(user=user_with_role(role)).patch(URL, {"logs_days": 5}, format="json")
    assert response.status_code == status


@pytest.mark.parametrize(("scope", "get", "patch"), [("read", 200, 403), ("config", 200, 403),
                                                     ("ingest", 403, 403)])
def test_tokens_read_at_most_and_never_change(api_client: Callable, make_token: Callable, scope: str, get: int,
                                             patch: int) -> None:
    client = api_client(token=make_token(scope)[1])
    assert client.get(URL).status_code == get
    assert client.patch(URL, {"logs_days": 5}, format="json").status_code == patch
    assert not LogRetention.objects.exists()


def test_other_org_gets_404_and_changes_only_its_own(api_client: Callable, other_org_user: Any, org: Any,
                                                     other_org: Any) -> None:
    client = api_client(user=other_org_user)
    assert client.get(URL, HTTP_X_ORGANIZATION=org.slug).status_code == 404
    assert client.patch(URL, {"logs_days": 3}, format="json", HTTP_X_ORGANIZATION=org.slug).status_code == 404
    assert retention.retention_days(org.pk, "logs") == 30
    # other_org_user is an owner of other_org (tests/conftest.py): its own organization is its to change.
    assert client.patch(URL, {"logs_days": 3}, format="json").status_code == 200
    assert retention.retention_days(other_org.pk, "logs") == 3 and retention.retention_days(org.pk, "logs") == 30
