"""The organization API (/api/v1/organization, /members, /tokens): the exact status for every role and
token scope on every endpoint, other organizations' ids give 404, tokens are shown once, every write
leaves its audit row, and the owner rules hold (only owners grant owner; the last owner stays)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from apps.audit.models import AuditEvent
from apps.core.roles import Role
from apps.organizations.models import AgentToken, Membership
from apps.organizations.services import issue_token
from apps.organizations.tokens import hash_token
from tests.organizations.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

OWNER, ADMIN, EDITOR, VIEWER = Role.OWNER, Role.ADMIN, Role.EDITOR, Role.VIEWER
ALL = (OWNER, ADMIN, EDITOR, VIEWER)


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    path: str  # {member} and {token} are replaced by the target's public id
    ok: int
    minimum: str
    data: Any = None
    scopes: tuple[str, ...] = ()  # the token scopes that may call it (members and tokens: none)

    def expected(self, role: str) -> int:
        return self.ok if ALL.index(role) <= ALL.index(self.minimum) else 403


ENDPOINTS = [
    Endpoint("organization-get", "get", "/api/v1/organization", 200, VIEWER, scopes=("read", "config")),
    Endpoint("organization-patch", "patch", "/api/v1/organization", 200, ADMIN, {"name": "Acme Renamed"}),
    Endpoint("members-list", "get", "/api/v1/members", 200, ADMIN),
    Endpoint("member-add", "post", "/api/v1/members", 201, ADMIN, {"username": "newbie", "role": VIEWER}),
    Endpoint("member-get", "get", "/api/v1/members/{member}", 200, ADMIN),
    Endpoint("member-patch", "patch", "/api/v1/members/{member}", 200, ADMIN, {"role": EDITOR}),
    Endpoint("member-delete", "delete", "/api/v1/members/{member}", 204, ADMIN),
    Endpoint("tokens-list", "get", "/api/v1/tokens", 200, ADMIN),
    Endpoint("token-create", "post", "/api/v1/tokens", 201, ADMIN, {"name": "ci", "scope": "read"}),
    Endpoint("token-get", "get", "/api/v1/tokens/{token}", 200, ADMIN),
    Endpoint("token-revoke", "post", "/api/v1/tokens/{token}/revoke", 200, ADMIN),
]
DETAIL_ENDPOINTS = [e for e in ENDPOINTS if "{" in e.path]
WRITES = {  # endpoint -> audit action it must leave
    "organization-patch": "organization.updated",
    "member-add": "membership.created",
    "member-patch": "membership.updated",
    "member-delete": "membership.deleted",
    "token-create": "token.created",
    "token-revoke": "token.revoked",
}


@pytest.fixture
def targets(org) -> dict[str, Any]:
    """A member and a token of `org` for the detail endpoints to act on, and a user to add."""
    UserFactory(username="newbie")
    member = MembershipFactory(organization=org, user=UserFactory(username="target"), role=VIEWER)
    token, _ = issue_token(organization=org, name="target-token", actor=None)
    return {"member": member, "token": token}


def _call(client, endpoint: Endpoint, targets: dict[str, Any]):
    path = endpoint.path.format(member=targets["member"].public_id, token=targets["token"].public_id)
    return getattr(client, endpoint.method)(path, endpoint.data, format="json")


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
@pytest.mark.parametrize("role", ALL)
def test_every_role_gets_the_exact_status(api_client, user_with_role, targets, endpoint, role):
    response = _call(api_client(user=user_with_role(role)), endpoint, targets)
    assert response.status_code == endpoint.expected(role), response.content


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
@pytest.mark.parametrize("scope", ["ingest", "write", "read", "config"])
def test_every_token_scope_gets_the_exact_status(api_client, make_token, targets, endpoint, scope):
    response = _call(api_client(token=make_token(scope)[1]), endpoint, targets)
    assert response.status_code == (endpoint.ok if scope in endpoint.scopes else 403), response.content


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
def test_anonymous_callers_are_refused(api_client, targets, endpoint):
    assert _call(api_client(), endpoint, targets).status_code == 401


@pytest.mark.parametrize("endpoint", DETAIL_ENDPOINTS, ids=lambda e: e.name)
def test_other_org_ids_give_404(api_client, owner, other_org, endpoint):
    foreign = {
        "member": MembershipFactory(organization=other_org, user=UserFactory(username="foreigner"), role=VIEWER),
        "token": issue_token(organization=other_org, name="foreign", actor=None)[0],
    }
    assert _call(api_client(user=owner), endpoint, foreign).status_code == 404
    assert Membership.objects.filter(pk=foreign["member"].pk, role=VIEWER).exists()
    foreign["token"].refresh_from_db()
    assert foreign["token"].revoked_at is None


@pytest.mark.parametrize("endpoint", DETAIL_ENDPOINTS, ids=lambda e: e.name)
def test_other_org_ids_give_404_to_tokens_too(api_client, make_token, other_org, endpoint):
    foreign = {
        "member": MembershipFactory(organization=other_org, user=UserFactory(username="foreigner"), role=VIEWER),
        "token": issue_token(organization=other_org, name="foreign", actor=None)[0],
    }
    status = _call(api_client(token=make_token(AgentToken.Scope.CONFIG)[1]), endpoint, foreign).status_code
    # No token may use members or tokens: refused before any lookup, so nothing about the id leaks.
    assert status == 403


def test_other_org_member_cannot_see_this_organization(api_client, other_org_user, targets):
    response = api_client(user=other_org_user).get("/api/v1/members", HTTP_X_ORGANIZATION="acme")
    assert response.status_code == 404


@pytest.mark.parametrize("endpoint_name", list(WRITES))
def test_every_write_leaves_its_audit_row(api_client, owner, org, targets, endpoint_name):
    endpoint = next(e for e in ENDPOINTS if e.name == endpoint_name)
    client = api_client(user=owner)  # logging in is audited too: count from after it
    before = set(AuditEvent.objects.values_list("pk", flat=True))
    response = _call(client, endpoint, targets)
    assert response.status_code == endpoint.ok
    new = list(AuditEvent.objects.exclude(pk__in=before))
    assert [e.action for e in new] == [WRITES[endpoint_name]]
    event = new[0]
    assert (event.organization_id, event.actor_type, event.actor_repr) == (org.pk, "user", "alice")
    assert event.request_id  # ties the row to the request's log lines
    if endpoint_name == "organization-patch":
        assert event.changes == {"name": ["Acme", "Acme Renamed"]}
    elif endpoint_name == "member-patch":
        assert event.changes == {"role": [VIEWER, EDITOR]}
        assert event.object_id == str(targets["member"].public_id)
    elif endpoint_name == "token-revoke":
        assert event.object_id == str(targets["token"].public_id)
        assert list(event.changes) == ["revoked_at"]
    elif endpoint_name == "token-create":
        assert "token_hash" not in event.changes
    elif endpoint_name == "member-add":
        assert event.changes["role"] == [None, VIEWER]


def test_reads_leave_no_audit_row(api_client, owner, targets):
    client = api_client(user=owner)
    before = AuditEvent.objects.count()
    for endpoint in ENDPOINTS:
        if endpoint.method == "get":
            assert _call(client, endpoint, targets).status_code == 200
    assert AuditEvent.objects.count() == before


def test_token_creation_returns_the_token_once_and_the_list_never_contains_it(api_client, owner, org):
    client = api_client(user=owner)
    created = client.post("/api/v1/tokens", {"name": "grafana", "scope": "read"}, format="json").json()
    plaintext = created["token"]
    assert plaintext.startswith(f"fst_{created['prefix']}_")
    stored = AgentToken.objects.get(public_id=created["id"])
    assert stored.token_hash == hash_token(plaintext)
    assert plaintext not in stored.token_hash
    listing = client.get("/api/v1/tokens")
    detail = client.get(f"/api/v1/tokens/{created['id']}")
    for response in (listing, detail):
        assert response.status_code == 200
        assert plaintext not in response.content.decode()
        assert "token_hash" not in response.content.decode()
    assert all("token" not in item for item in listing.json()["results"])
    # The token works, with the scope it was given.
    assert api_client(token=plaintext).get("/api/v1/organization").status_code == 200


def test_revoked_token_stops_working(api_client, owner, make_token):
    token, plaintext = make_token(AgentToken.Scope.READ)
    assert api_client(token=plaintext).get("/api/v1/organization").status_code == 200
    api_client(user=owner).post(f"/api/v1/tokens/{token.public_id}/revoke")
    assert api_client(token=plaintext).get("/api/v1/organization").status_code == 401


def test_only_an_owner_can_make_an_owner(api_client, admin_member, owner, targets):
    path = f"/api/v1/members/{targets['member'].public_id}"
    assert api_client(user=admin_member).patch(path, {"role": OWNER}, format="json").status_code == 403
    assert api_client(user=owner).patch(path, {"role": OWNER}, format="json").status_code == 200


def test_organization_patch_cannot_change_slug_or_plan(api_client, owner, org):
    response = api_client(user=owner).patch("/api/v1/organization", {"slug": "evil", "plan": "enterprise"},
                                            format="json")
    assert response.status_code == 200
    org.refresh_from_db()
    assert (org.slug, org.plan) == ("acme", "free")


@pytest.mark.parametrize(("sent", "stored"), [("write", "ingest"), ("ingest", "ingest"), ("config", "config")])
def test_token_scope_may_be_given_by_its_old_name(api_client, owner, sent, stored):
    response = api_client(user=owner).post("/api/v1/tokens", {"name": "t", "scope": sent}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["scope"] == stored
    assert AgentToken.objects.get(public_id=response.json()["id"]).scope == stored


def test_unknown_token_scope_is_a_400_naming_the_field(api_client, owner):
    response = api_client(user=owner).post("/api/v1/tokens", {"name": "t", "scope": "admin"}, format="json")
    assert response.status_code == 400
    assert "scope" in response.json()


def test_an_ingest_token_cannot_mint_tokens_or_add_members(api_client, make_token, targets):
    client = api_client(token=make_token(AgentToken.Scope.INGEST)[1])
    assert client.post("/api/v1/tokens", {"name": "escalate", "scope": "config"}, format="json").status_code == 403
    assert client.post("/api/v1/members", {"username": "newbie", "role": OWNER}, format="json").status_code == 403
    assert not AgentToken.objects.filter(name="escalate").exists()
    assert not Membership.objects.filter(user__username="newbie").exists()


def test_admin_adds_an_existing_user(api_client, admin_member, org, targets):
    response = api_client(user=admin_member).post("/api/v1/members", {"username": "newbie", "role": EDITOR},
                                                  format="json")
    assert response.status_code == 201, response.content
    assert response.json()["username"] == "newbie"
    assert Membership.objects.get(organization=org, user__username="newbie").role == EDITOR


@pytest.mark.parametrize(("body", "field"), [
    ({"username": "nobody-by-that-name"}, "username"),
    ({"username": "target"}, "user"),  # already a member
    ({"username": "newbie", "role": "superuser"}, "role"),
    ({}, "username"),
])
def test_adding_a_member_with_bad_input_is_a_400_naming_the_field(api_client, owner, targets, body, field):
    response = api_client(user=owner).post("/api/v1/members", body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()


def test_an_inactive_user_cannot_be_added(api_client, owner, targets):
    UserFactory(username="gone", is_active=False)
    response = api_client(user=owner).post("/api/v1/members", {"username": "gone"}, format="json")
    assert response.status_code == 400
    assert "username" in response.json()


def test_only_an_owner_can_add_an_owner(api_client, admin_member, owner, org, targets):
    body = {"username": "newbie", "role": OWNER}
    assert api_client(user=admin_member).post("/api/v1/members", body, format="json").status_code == 403
    assert not Membership.objects.filter(user__username="newbie").exists()
    assert api_client(user=owner).post("/api/v1/members", body, format="json").status_code == 201


def test_an_admin_cannot_demote_or_remove_an_owner(api_client, admin_member, owner, user_with_role):
    second_owner = Membership.objects.get(user=user_with_role(OWNER))
    client = api_client(user=admin_member)
    path = f"/api/v1/members/{second_owner.public_id}"
    assert client.patch(path, {"role": VIEWER}, format="json").status_code == 403
    assert client.delete(path).status_code == 403
    second_owner.refresh_from_db()
    assert second_owner.role == OWNER


def test_the_last_owner_can_be_neither_demoted_nor_removed(api_client, owner, admin_member):
    mine = Membership.objects.get(user=owner)
    client = api_client(user=owner)
    before = AuditEvent.objects.count()
    demoted = client.patch(f"/api/v1/members/{mine.public_id}", {"role": ADMIN}, format="json")
    assert demoted.status_code == 400
    assert "last owner" in demoted.json()["role"][0]
    removed = client.delete(f"/api/v1/members/{mine.public_id}")
    assert removed.status_code == 400
    assert "last owner" in removed.json()["member"][0]
    mine.refresh_from_db()
    assert mine.role == OWNER
    assert AuditEvent.objects.count() == before


def test_with_a_second_owner_an_owner_may_step_down(api_client, owner, user_with_role):
    user_with_role(OWNER)
    mine = Membership.objects.get(user=owner)
    response = api_client(user=owner).patch(f"/api/v1/members/{mine.public_id}", {"role": ADMIN}, format="json")
    assert response.status_code == 200
    assert response.json()["role"] == ADMIN


def test_member_writes_need_the_csrf_token(owner, targets):
    from rest_framework.test import APIClient

    client = APIClient(enforce_csrf_checks=True)
    client.force_login(owner)
    response = client.post("/api/v1/members", {"username": "newbie"}, format="json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    assert not Membership.objects.filter(user__username="newbie").exists()


@pytest.mark.parametrize(("body", "field"), [
    ({"name": "late", "expires_at": "2020-01-01T00:00:00Z"}, "expires_at"),
    ({"name": "x" * 101}, "name"),
])
def test_token_creation_refuses_a_dead_or_oversized_token_naming_the_field(api_client, owner, org, body, field):
    response = api_client(user=owner).post("/api/v1/tokens", body, format="json")
    assert response.status_code == 400, response.content
    assert response["Content-Type"].startswith("application/json")
    assert field in response.json()
    assert not AgentToken.objects.for_org(org).exists()
