"""Organization pages (/<org>/tokens/; the overview at /<org>/ is tests/dashboards): roles, other
organizations, sign-in, tokens shown once, audited revocation, and CSRF."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from apps.audit.models import AuditEvent
from apps.core.roles import Role
from apps.organizations.models import AgentToken
from apps.organizations.services import authenticate_token, issue_token
from apps.organizations.tokens import hash_token

pytestmark = pytest.mark.django_db


def _client(user, **kwargs) -> Client:
    client = Client(**kwargs)
    client.force_login(user)
    return client


def _tokens_url(org) -> str:
    return reverse("organizations:tokens", args=[org.slug])


@pytest.mark.parametrize(("name", "role", "status"), [
    ("organizations:tokens", Role.OWNER, 200),
    ("organizations:tokens", Role.ADMIN, 200),
    ("organizations:tokens", Role.EDITOR, 403),
    ("organizations:tokens", Role.VIEWER, 403),
])
def test_pages_role_matrix(user_with_role, org, name, role, status):
    assert _client(user_with_role(role)).get(reverse(name, args=[org.slug])).status_code == status


@pytest.mark.parametrize(("role", "status"), [
    (Role.OWNER, 200), (Role.ADMIN, 200), (Role.EDITOR, 403), (Role.VIEWER, 403),
])
def test_issuing_a_token_needs_admin(user_with_role, org, role, status):
    response = _client(user_with_role(role)).post(_tokens_url(org), {"name": "ci", "scope": "read"})
    assert response.status_code == status
    assert AgentToken.objects.for_org(org).filter(name="ci").exists() == (status == 200)


@pytest.mark.parametrize("name", ["organizations:tokens"])
def test_pages_other_org_gets_404(other_org_user, org, name):
    assert _client(other_org_user).get(reverse(name, args=[org.slug])).status_code == 404


@pytest.mark.parametrize("name", ["organizations:tokens"])
def test_unknown_org_gets_the_same_404(owner, name):
    assert _client(owner).get(reverse(name, args=["no-such-org"])).status_code == 404


def test_other_org_user_cannot_revoke_a_token_here(other_org_user, org):
    token, _ = issue_token(organization=org, name="victim", actor=None)
    response = _client(other_org_user).post(_tokens_url(org), {"revoke": str(token.public_id)})
    assert response.status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


def test_revoking_another_orgs_token_from_my_page_gets_404(owner, org, other_org):
    foreign, _ = issue_token(organization=other_org, name="foreign", actor=None)
    response = _client(owner).post(_tokens_url(org), {"revoke": str(foreign.public_id)})
    assert response.status_code == 404
    foreign.refresh_from_db()
    assert foreign.revoked_at is None


@pytest.mark.parametrize("name", ["organizations:tokens"])
def test_anonymous_users_are_sent_to_login(client, org, name):
    url = reverse(name, args=[org.slug])
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))
    assert "next=" in response["Location"]


def test_issuing_a_token_shows_it_once(owner, org):
    client = _client(owner)
    response = client.post(_tokens_url(org), {"name": "telegraf", "scope": "ingest"})
    assert response.status_code == 200
    plaintext = response.context["new_token"]
    assert plaintext in response.content.decode()
    token = AgentToken.objects.for_org(org).get(name="telegraf")
    assert token.token_hash == hash_token(plaintext)
    assert authenticate_token(plaintext) == token
    assert token.created_by == owner
    again = client.get(_tokens_url(org))
    assert plaintext not in again.content.decode()
    assert token.prefix in again.content.decode()
    assert AuditEvent.objects.filter(action="token.created", object_id=str(token.public_id),
                                     actor_repr="alice").count() == 1


def test_revoke_works_and_is_audited(owner, org):
    token, plaintext = issue_token(organization=org, name="old-agent", actor=None)
    response = _client(owner).post(_tokens_url(org), {"revoke": str(token.public_id)})
    assert response.status_code == 302
    assert response["Location"] == _tokens_url(org)
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert authenticate_token(plaintext) is None
    event = AuditEvent.objects.get(action="token.revoked", object_id=str(token.public_id))
    assert (event.organization_id, event.actor_repr) == (org.pk, "alice")
    assert event.request_id


def test_token_form_rejects_a_missing_name(owner, org):
    response = _client(owner).post(_tokens_url(org), {"name": "", "scope": "ingest"})
    assert response.status_code == 200
    assert response.context["form"].errors["name"]
    assert response.context["new_token"] is None
    assert not AgentToken.objects.for_org(org).exists()


def test_token_page_posts_need_a_csrf_token(owner, org):
    client = _client(owner, enforce_csrf_checks=True)
    response = client.post(_tokens_url(org), {"name": "forged", "scope": "ingest"})
    assert response.status_code == 403
    assert not AgentToken.objects.filter(name="forged").exists()
    page = client.get(_tokens_url(org))
    csrf = page.cookies["csrftoken"].value
    response = client.post(_tokens_url(org), {"name": "genuine", "scope": "ingest", "csrfmiddlewaretoken": csrf})
    assert response.status_code == 200
    assert AgentToken.objects.filter(name="genuine").exists()


@pytest.mark.parametrize("scope", ["ingest", "read", "config"])
def test_the_token_page_issues_each_scope(owner, org, scope):
    response = _client(owner).post(_tokens_url(org), {"name": f"t-{scope}", "scope": scope})
    assert response.status_code == 200
    assert AgentToken.objects.for_org(org).get(name=f"t-{scope}").scope == scope


def test_token_form_refuses_an_expiry_in_the_past_on_the_field(owner, org):
    response = _client(owner).post(_tokens_url(org), {"name": "late", "scope": "ingest",
                                                      "expires_at": "2020-01-01 00:00"})
    assert response.status_code == 200
    assert response.context["form"].errors["expires_at"] == ["A new token's expiry must be in the future."]
    assert response.context["new_token"] is None
    assert not AgentToken.objects.for_org(org).exists()


def test_revoking_a_token_id_that_is_no_uuid_is_a_404(owner, org):
    """``revoke=not-a-uuid`` was a 500: get_for_member let the UUID field's ValidationError through."""
    response = _client(owner).post(_tokens_url(org), {"revoke": "not-a-uuid"})
    assert response.status_code == 404
