"""Management commands: `issue_token` prints only the token; `seed_demo` is idempotent and what it
prints actually works."""

from __future__ import annotations

import io
import re

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from apps.organizations.models import AgentToken, Membership, Organization
from apps.organizations.services import authenticate_token

pytestmark = pytest.mark.django_db

TOKEN_LINE = re.compile(r"^fst_[0-9a-f]{12}_[A-Za-z0-9_-]{20,}$")


def _run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_issue_token_prints_only_a_working_read_token(org):
    output = _run("issue_token", org.slug, "telegraf", "--scope", "read")
    lines = output.splitlines()
    assert len(lines) == 1
    assert TOKEN_LINE.match(lines[0])
    token = authenticate_token(lines[0])
    assert token is not None
    assert (token.organization, token.name, token.scope) == (org, "telegraf", AgentToken.Scope.READ)
    assert token.expires_at is None


def test_issue_token_defaults_to_write_and_can_expire(org):
    token = authenticate_token(_run("issue_token", org.slug, "ci", "--expires-in-days", "7").strip())
    assert token.scope == AgentToken.Scope.WRITE
    assert token.expires_at is not None


def test_issue_token_for_an_unknown_org_fails(db):
    with pytest.raises(CommandError, match="no-such-org"):
        _run("issue_token", "no-such-org", "x")
    assert not AgentToken.objects.exists()


def _printed(output: str) -> tuple[str, str]:
    password = re.search(r"password (\S+)", output).group(1)
    token = re.search(r"Agent token:\s+(\S+)", output).group(1)
    return password, token


def test_seed_demo_is_idempotent_and_its_credentials_work(tmp_path, client):
    credentials = tmp_path / "demo-credentials"
    first = _run("seed_demo", "--credentials-file", str(credentials))
    second = _run("seed_demo", "--credentials-file", str(credentials))
    assert _printed(first) == _printed(second)
    password, token = _printed(second)
    assert Organization.objects.filter(slug="demo").count() == 1
    assert get_user_model().objects.filter(username="admin").count() == 1
    assert Membership.objects.filter(organization__slug="demo", user__username="admin").count() == 1
    assert AgentToken.objects.filter(organization__slug="demo").count() == 1
    saved = credentials.read_text()
    assert f"FIBERSTACK_ADMIN_PASSWORD={password}" in saved
    assert f"FIBERSTACK_AGENT_TOKEN={token}" in saved
    assert credentials.stat().st_mode & 0o077 == 0
    assert client.login(username="admin", password=password)
    authenticated = authenticate_token(token)
    assert authenticated is not None and authenticated.organization.slug == "demo"


def test_seed_demo_replaces_a_token_that_no_longer_works(tmp_path):
    credentials = tmp_path / "demo-credentials"
    _, token = _printed(_run("seed_demo", "--credentials-file", str(credentials)))
    AgentToken.objects.update(revoked_at="2020-01-01T00:00:00Z")
    _, new_token = _printed(_run("seed_demo", "--credentials-file", str(credentials)))
    assert new_token != token
    assert authenticate_token(new_token) is not None
