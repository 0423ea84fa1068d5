"""Agent tokens: only a hash is stored; expiry, revocation, scopes and the three header forms."""

from __future__ import annotations

import base64
import datetime

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from apps.audit.models import AuditEvent
from apps.organizations.models import AgentToken
from apps.organizations.services import authenticate_token, revoke_token
from apps.organizations.tokens import hash_token

pytestmark = pytest.mark.django_db


def test_only_the_hash_of_a_token_is_stored(make_token):
    token, plaintext = make_token()
    row = AgentToken.objects.values().get(pk=token.pk)
    assert plaintext not in str(row)
    assert row["token_hash"] == hash_token(plaintext)
    assert plaintext.startswith(f"fst_{row['prefix']}_")


def test_token_creation_and_revocation_are_audited(make_token, owner):
    token, _ = make_token()
    revoke_token(token=token, actor=owner)
    revoke_token(token=token, actor=owner)  # second revoke is a no-op
    actions = list(AuditEvent.objects.filter(object_id=str(token.public_id)).values_list("action", flat=True))
    assert sorted(actions) == ["token.created", "token.revoked"]


def test_revoked_and_expired_tokens_do_not_authenticate(make_token):
    revoked, revoked_plain = make_token()
    revoke_token(token=revoked, actor=None)
    expired, expired_plain = make_token(expires_at=timezone.now() + datetime.timedelta(days=1))
    AgentToken.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - datetime.timedelta(seconds=1))
    _, valid_plain = make_token(expires_at=timezone.now() + datetime.timedelta(days=1))
    assert authenticate_token(revoked_plain) is None
    assert authenticate_token(expired_plain) is None
    assert authenticate_token(valid_plain) is not None
    assert authenticate_token(valid_plain[:-1] + ("A" if valid_plain[-1] != "A" else "B")) is None
    assert authenticate_token("garbage") is None


def test_token_use_updates_last_used_and_is_audited_once_per_idle_period(make_token):
    token, plaintext = make_token()
    assert authenticate_token(plaintext) is not None
    assert authenticate_token(plaintext) is not None
    token.refresh_from_db()
    assert token.last_used_at is not None
    assert AuditEvent.objects.filter(action="token.used", object_id=str(token.public_id)).count() == 1


def _members_url() -> str:
    return "/api/v1/organization"


@pytest.mark.parametrize("form", ["bearer", "token", "basic"])
def test_three_authorization_header_forms_authenticate(form, read_token, org):
    headers = {
        "bearer": f"Bearer {read_token}",
        "token": f"Token {read_token}",
        "basic": "Basic " + base64.b64encode(f"grafana:{read_token}".encode()).decode(),
    }
    client = APIClient()
    response = client.get(_members_url(), HTTP_AUTHORIZATION=headers[form])
    assert response.status_code == 200, response.content
    assert response.json()["slug"] == org.slug


def test_bad_token_gets_401_with_a_json_body():
    response = APIClient().get(_members_url(), HTTP_AUTHORIZATION="Bearer fst_000000000000_nope")
    assert response.status_code == 401
    assert "detail" in response.json()


def test_read_scope_cannot_write(read_token, api_client):
    response = api_client(token=read_token).patch(_members_url(), {"name": "Renamed"}, format="json")
    assert response.status_code == 403
