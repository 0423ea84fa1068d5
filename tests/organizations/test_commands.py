"""Management commands: `issue_token` prints only the token (any scope, `write` as ingest's old name);
`add_member` creates users with a working set-password link and keeps the last owner; `seed_demo` is
idempotent and what it prints actually works."""

from __future__ import annotations

import io
import re

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from apps.audit.models import AuditEvent
from apps.organizations.models import AgentToken, Membership, Organization
from apps.organizations.services import authenticate_token
from tests.organizations.factories import UserFactory

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


def test_issue_token_defaults_to_ingest_and_can_expire(org):
    token = authenticate_token(_run("issue_token", org.slug, "ci", "--expires-in-days", "7").strip())
    assert token.scope == AgentToken.Scope.INGEST
    assert token.expires_at is not None


@pytest.mark.parametrize(("given", "stored"), [("ingest", "ingest"), ("write", "ingest"), ("read", "read"),
                                               ("config", "config")])
def test_issue_token_takes_every_scope_and_the_old_write_name(org, given, stored):
    output = _run("issue_token", org.slug, f"t-{given}", "--scope", given)
    assert TOKEN_LINE.match(output.strip())
    assert authenticate_token(output.strip()).scope == stored


def test_issue_token_refuses_an_unknown_scope(org):
    with pytest.raises(CommandError, match="scope"):
        _run("issue_token", org.slug, "x", "--scope", "admin")
    assert not AgentToken.objects.exists()


def test_issue_token_refuses_a_name_longer_than_its_field(org):
    with pytest.raises(CommandError, match="name"):
        _run("issue_token", org.slug, "x" * 101)
    assert not AgentToken.objects.exists()


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


LINK = re.compile(r"Set-password link \(single use, valid \d+ hours\): (\S+)")


def test_add_member_creates_the_user_and_prints_a_working_set_password_link(org, client, settings):
    settings.FIBERSTACK_BASE_URL = "https://fiberstack.example.com/"
    output = _run("add_member", org.slug, "dana", "--role", "editor", "--email", "dana@example.com")
    assert "Created user dana." in output
    assert "Added dana to acme as editor." in output
    link = LINK.search(output).group(1)
    assert link.startswith("https://fiberstack.example.com/accounts/reset/")
    user = get_user_model().objects.get(username="dana")
    assert (user.email, user.has_usable_password()) == ("dana@example.com", False)
    assert Membership.objects.get(organization=org, user=user).role == "editor"
    assert list(AuditEvent.objects.order_by("id").values_list("action", flat=True)) == [
        "user.created", "membership.created"]
    # The link sets a password, once.
    form_page = client.get(link.removeprefix("https://fiberstack.example.com"), follow=True)
    assert form_page.status_code == 200
    set_url = form_page.redirect_chain[-1][0]
    done = client.post(set_url, {"new_password1": "a long new passphrase", "new_password2": "a long new passphrase"})
    assert done.status_code == 302
    assert client.login(username="dana", password="a long new passphrase")
    client.logout()
    reused = client.get(link.removeprefix("https://fiberstack.example.com"), follow=True)
    assert not reused.context["validlink"]


def test_add_member_adds_an_existing_user_without_a_link(org):
    UserFactory(username="erin")
    output = _run("add_member", org.slug, "erin")
    assert output.strip() == "Added erin to acme as viewer."
    assert Membership.objects.get(organization=org, user__username="erin").role == "viewer"


def test_add_member_changes_an_existing_member_role_only_when_asked(org, member_ro):
    assert _run("add_member", org.slug, "bob").strip() == "bob is already viewer in acme."
    assert _run("add_member", org.slug, "bob", "--role", "admin").strip() == "bob is now admin in acme."
    assert Membership.objects.get(organization=org, user=member_ro).role == "admin"
    event = AuditEvent.objects.get(action="membership.updated")
    assert (event.actor_repr, event.changes) == ("system", {"role": ["viewer", "admin"]})


def test_add_member_refuses_to_demote_the_last_owner(org, owner):
    with pytest.raises(CommandError, match="last owner"):
        _run("add_member", org.slug, "alice", "--role", "viewer")
    assert Membership.objects.get(user=owner).role == "owner"


@pytest.mark.parametrize(("args", "message"), [
    (["no-such-org", "x"], "no-such-org"),
    (["acme", "bad name!"], "username"),
    (["acme", "fine", "--email", "not-an-address"], "email"),
])
def test_add_member_errors_name_the_problem_and_change_nothing(org, args, message):
    with pytest.raises(CommandError, match=message):
        _run("add_member", *args)
    assert not get_user_model().objects.exists()
    assert not Membership.objects.exists()


def test_add_member_reprints_the_link_while_the_password_is_unset(org):
    _run("add_member", org.slug, "late")
    again = _run("add_member", org.slug, "late")
    assert "already viewer" in again
    assert LINK.search(again)
