"""Platform admins manage tenants in the Django admin: every write there is audited, tokens are shown
once and stored only as a hash, revocation is an action, and non-staff are kept out."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from apps.audit.models import AuditEvent
from apps.core.roles import Role
from apps.organizations.models import AgentToken, Membership, Organization
from apps.organizations.services import authenticate_token, issue_token, revoke_token
from apps.organizations.tokens import hash_token
from tests.organizations.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

TOKEN_RE = re.compile(r"fst_[0-9a-f]{12}_[A-Za-z0-9_-]+")


@pytest.fixture
def superuser(admin_user):
    return admin_user


@pytest.fixture
def staff_client(client, superuser):
    client.force_login(superuser)
    return client


def _new_events(before: set[int]) -> list[AuditEvent]:
    return list(AuditEvent.objects.exclude(pk__in=before).order_by("id"))


def _event_ids() -> set[int]:
    return set(AuditEvent.objects.values_list("pk", flat=True))


def test_superuser_creates_an_organization_with_a_member_and_both_are_audited(staff_client, superuser):
    person = UserFactory(username="dana")
    before = _event_ids()
    response = staff_client.post(reverse("admin:organizations_organization_add"), {
        "name": "Initech", "slug": "initech", "plan": "team", "is_active": "on", "auto_register_hosts": "on",
        "memberships-TOTAL_FORMS": "1", "memberships-INITIAL_FORMS": "0",
        "memberships-MIN_NUM_FORMS": "0", "memberships-MAX_NUM_FORMS": "1000",
        "memberships-0-user": str(person.pk), "memberships-0-role": Role.OWNER,
    })
    assert response.status_code == 302, response.context["adminform"].errors if response.context else ""
    organization = Organization.objects.get(slug="initech")
    assert Membership.objects.get(organization=organization).user == person
    events = _new_events(before)
    assert [e.action for e in events] == ["organization.created", "membership.created"]
    assert all(e.organization_id == organization.pk and e.actor_repr == superuser.username for e in events)
    assert events[0].changes["name"] == [None, "Initech"]


def test_superuser_edits_an_organization_and_the_diff_is_audited(staff_client, org):
    before = _event_ids()
    response = staff_client.post(reverse("admin:organizations_organization_change", args=[org.pk]), {
        "name": "Acme Corp", "slug": "acme", "plan": "enterprise", "is_active": "on",
        "memberships-TOTAL_FORMS": "0", "memberships-INITIAL_FORMS": "0",
        "memberships-MIN_NUM_FORMS": "0", "memberships-MAX_NUM_FORMS": "1000",
    })
    assert response.status_code == 302
    [event] = _new_events(before)
    assert event.action == "organization.updated"
    assert event.changes == {"auto_register_hosts": [True, False], "name": ["Acme", "Acme Corp"],
                             "plan": ["free", "enterprise"]}


def test_superuser_creates_a_membership_and_it_is_audited(staff_client, org):
    person = UserFactory(username="eve")
    before = _event_ids()
    response = staff_client.post(reverse("admin:organizations_membership_add"),
                                 {"user": str(person.pk), "organization": str(org.pk), "role": Role.EDITOR})
    assert response.status_code == 302
    membership = Membership.objects.get(organization=org, user=person)
    [event] = _new_events(before)
    assert (event.action, event.object_id, event.organization_id) == (
        "membership.created", str(membership.public_id), org.pk)


def test_superuser_deletes_a_membership_and_it_is_audited(staff_client, org):
    membership = MembershipFactory(organization=org, user=UserFactory(username="leaver"), role=Role.VIEWER)
    before = _event_ids()
    response = staff_client.post(reverse("admin:organizations_membership_delete", args=[membership.pk]),
                                 {"post": "yes"})
    assert response.status_code == 302
    assert not Membership.objects.filter(pk=membership.pk).exists()
    [event] = _new_events(before)
    assert (event.action, event.changes["role"]) == ("membership.deleted", [Role.VIEWER, None])


def test_the_admin_refuses_a_new_token_that_has_already_expired(staff_client, org, superuser):
    response = staff_client.post(reverse("admin:organizations_agenttoken_add"),
                                 {"organization": str(org.pk), "name": "late", "scope": "read",
                                  "expires_at_0": "2020-01-01", "expires_at_1": "00:00"})
    assert response.status_code == 200
    assert response.context["adminform"].errors["expires_at"] == ["A new token's expiry must be in the future."]
    assert not AgentToken.objects.filter(organization=org).exists()


def test_superuser_issues_a_token_shown_once_and_stored_as_a_hash(staff_client, org, superuser):
    before = _event_ids()
    response = staff_client.post(reverse("admin:organizations_agenttoken_add"),
                                 {"organization": str(org.pk), "name": "telegraf", "scope": "read",
                                  "expires_at_0": "", "expires_at_1": ""}, follow=True)
    assert response.status_code == 200
    shown = [match.group(0) for m in response.context["messages"] if (match := TOKEN_RE.search(m.message))]
    assert len(shown) == 1
    plaintext = shown[0]
    token = AgentToken.objects.get(organization=org, name="telegraf")
    assert token.token_hash == hash_token(plaintext)
    assert (token.scope, token.created_by) == ("read", superuser)
    assert authenticate_token(plaintext) == token
    assert AgentToken.objects.filter(organization=org).count() == 1
    assert [e.action for e in _new_events(before) if e.action != "token.used"] == ["token.created"]
    # Not shown again anywhere in the admin.
    change_page = staff_client.get(reverse("admin:organizations_agenttoken_change", args=[token.pk]))
    changelist = staff_client.get(reverse("admin:organizations_agenttoken_changelist"))
    for page in (change_page, changelist):
        assert page.status_code == 200
        assert plaintext not in page.content.decode()
        assert token.token_hash not in page.content.decode()


def test_superuser_revokes_tokens_with_the_admin_action(staff_client, org):
    active, plaintext = issue_token(organization=org, name="old", actor=None)
    already, _ = issue_token(organization=org, name="gone", actor=None)
    revoke_token(token=already, actor=None)
    before = _event_ids()
    response = staff_client.post(reverse("admin:organizations_agenttoken_changelist"), {
        "action": "revoke_selected", "_selected_action": [str(active.pk), str(already.pk)],
    }, follow=True)
    assert response.status_code == 200
    assert "Revoked 1 token(s)." in [str(m) for m in response.context["messages"]]
    active.refresh_from_db()
    assert active.revoked_at is not None
    assert authenticate_token(plaintext) is None
    events = _new_events(before)
    assert [(e.action, e.object_id) for e in events] == [("token.revoked", str(active.public_id))]


def test_tokens_cannot_be_deleted_in_the_admin(staff_client, org):
    token, _ = issue_token(organization=org, name="keep", actor=None)
    assert staff_client.get(reverse("admin:organizations_agenttoken_delete", args=[token.pk])).status_code == 403


@pytest.mark.parametrize("url_name", [
    "admin:organizations_organization_changelist", "admin:organizations_membership_changelist",
    "admin:organizations_agenttoken_changelist", "admin:organizations_organization_add",
])
def test_non_staff_are_sent_to_the_admin_login(client, owner, url_name):
    client.force_login(owner)
    response = client.get(reverse(url_name))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


@pytest.mark.parametrize(("url_name", "params"), [
    ("admin:organizations_organization_changelist", {}),
    ("admin:organizations_organization_changelist", {"q": "acme"}),
    ("admin:organizations_organization_changelist", {"plan__exact": "free", "is_active__exact": "1"}),
    ("admin:organizations_organization_changelist", {"auto_register_hosts__exact": "0", "o": "5"}),
    ("admin:organizations_membership_changelist", {}),
    ("admin:organizations_membership_changelist", {"q": "alice"}),
    ("admin:organizations_membership_changelist", {"role__exact": "owner"}),
    ("admin:organizations_agenttoken_changelist", {}),
    ("admin:organizations_agenttoken_changelist", {"q": "agent"}),
    ("admin:organizations_agenttoken_changelist", {"scope__exact": "read"}),
    ("admin:organizations_agenttoken_changelist", {"revoked_at__isempty": "1"}),
])
def test_changelists_render_with_search_and_filters(staff_client, owner, make_token, url_name, params):
    make_token()
    response = staff_client.get(reverse(url_name), params)
    assert response.status_code == 200  # an unknown filter would redirect with ?e=1


def test_change_and_add_forms_render(staff_client, org, owner, make_token):
    token, _ = make_token()
    membership = Membership.objects.get(user=owner)
    for url in (
        reverse("admin:organizations_organization_change", args=[org.pk]),
        reverse("admin:organizations_membership_change", args=[membership.pk]),
        reverse("admin:organizations_agenttoken_change", args=[token.pk]),
        reverse("admin:organizations_agenttoken_add"),
        reverse("admin:organizations_membership_add"),
    ):
        assert staff_client.get(url).status_code == 200, url


def _inline_data(org, rows, *, initial: int) -> dict[str, str]:
    """The organization change form with `rows` ({"id", "user", "role", "DELETE"}) as membership inlines."""
    data = {"name": org.name, "slug": org.slug, "plan": org.plan, "is_active": "on", "auto_register_hosts": "on",
            "memberships-TOTAL_FORMS": str(len(rows)), "memberships-INITIAL_FORMS": str(initial),
            "memberships-MIN_NUM_FORMS": "0", "memberships-MAX_NUM_FORMS": "1000"}
    for i, row in enumerate(rows):
        for key, value in row.items():
            data[f"memberships-{i}-{key}"] = value
    return data


def _messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_membership_role_change_in_the_admin_goes_through_the_service(staff_client, org, owner):
    member = MembershipFactory(organization=org, user=UserFactory(username="promoted"), role=Role.VIEWER)
    before = _event_ids()
    response = staff_client.post(reverse("admin:organizations_membership_change", args=[member.pk]),
                                 {"role": Role.EDITOR})
    assert response.status_code == 302
    member.refresh_from_db()
    assert member.role == Role.EDITOR
    [event] = _new_events(before)
    assert (event.action, event.changes) == ("membership.updated", {"role": [Role.VIEWER, Role.EDITOR]})


def test_the_admin_cannot_demote_the_last_owner(staff_client, org, owner):
    membership = Membership.objects.get(user=owner)
    before = _event_ids()
    response = staff_client.post(reverse("admin:organizations_membership_change", args=[membership.pk]),
                                 {"role": Role.ADMIN}, follow=True)
    assert response.status_code == 200
    assert any("last owner" in m for m in _messages(response))
    membership.refresh_from_db()
    assert membership.role == Role.OWNER
    assert _new_events(before) == []


def test_the_admin_cannot_delete_the_last_owner(staff_client, org, owner):
    membership = Membership.objects.get(user=owner)
    response = staff_client.post(reverse("admin:organizations_membership_delete", args=[membership.pk]),
                                 {"post": "yes"}, follow=True)
    assert response.status_code == 200
    assert any("last owner" in m for m in _messages(response))
    assert Membership.objects.filter(pk=membership.pk).exists()


def test_bulk_delete_including_the_last_owner_deletes_nothing(staff_client, org, owner):
    other = MembershipFactory(organization=org, user=UserFactory(username="bystander"), role=Role.VIEWER)
    selected = [str(Membership.objects.get(user=owner).pk), str(other.pk)]
    before = _event_ids()
    response = staff_client.post(reverse("admin:organizations_membership_changelist"),
                                 {"action": "delete_selected", "_selected_action": selected, "post": "yes"},
                                 follow=True)
    assert response.status_code == 200
    assert any("last owner" in m for m in _messages(response))
    assert Membership.objects.filter(organization=org).count() == 2
    assert _new_events(before) == []


def test_bulk_delete_of_ordinary_members_is_audited_per_member(staff_client, org, owner):
    members = [MembershipFactory(organization=org, user=UserFactory(username=f"m{i}")) for i in range(2)]
    before = _event_ids()
    response = staff_client.post(reverse("admin:organizations_membership_changelist"), {
        "action": "delete_selected", "_selected_action": [str(m.pk) for m in members], "post": "yes"})
    assert response.status_code == 302
    assert not Membership.objects.filter(pk__in=[m.pk for m in members]).exists()
    assert [e.action for e in _new_events(before)] == ["membership.deleted", "membership.deleted"]


def test_the_membership_change_form_fixes_user_and_organization(staff_client, org, owner, other_org):
    member = MembershipFactory(organization=org, user=UserFactory(username="stays"), role=Role.VIEWER)
    staff_client.post(reverse("admin:organizations_membership_change", args=[member.pk]),
                      {"role": Role.VIEWER, "organization": str(other_org.pk), "user": str(owner.pk)})
    member.refresh_from_db()
    assert (member.organization, member.user.username) == (org, "stays")


def test_inline_handover_promotes_before_it_demotes(staff_client, org, owner):
    heir = MembershipFactory(organization=org, user=UserFactory(username="heir"), role=Role.ADMIN)
    mine = Membership.objects.get(user=owner)
    rows = [{"id": str(mine.pk), "user": str(owner.pk), "role": Role.VIEWER},
            {"id": str(heir.pk), "user": str(heir.user.pk), "role": Role.OWNER}]
    response = staff_client.post(reverse("admin:organizations_organization_change", args=[org.pk]),
                                 _inline_data(org, rows, initial=2))
    assert response.status_code == 302
    roles = dict(Membership.objects.filter(organization=org).values_list("user__username", "role"))
    assert roles == {"alice": Role.VIEWER, "heir": Role.OWNER}


def test_inline_removal_of_the_last_owner_is_refused_and_nothing_is_saved(staff_client, org, owner):
    mine = Membership.objects.get(user=owner)
    rows = [{"id": str(mine.pk), "user": str(owner.pk), "role": Role.OWNER, "DELETE": "on"}]
    data = _inline_data(org, rows, initial=1)
    data["name"] = "Renamed meanwhile"
    response = staff_client.post(reverse("admin:organizations_organization_change", args=[org.pk]), data,
                                 follow=True)
    assert any("last owner" in m for m in _messages(response))
    assert Membership.objects.filter(pk=mine.pk, role=Role.OWNER).exists()
    org.refresh_from_db()
    assert org.name == "Acme"  # the whole submission was rolled back


def test_inline_user_of_an_existing_row_cannot_be_swapped(staff_client, org, owner):
    member = MembershipFactory(organization=org, user=UserFactory(username="original"), role=Role.VIEWER)
    intruder = UserFactory(username="intruder")
    rows = [{"id": str(Membership.objects.get(user=owner).pk), "user": str(owner.pk), "role": Role.OWNER},
            {"id": str(member.pk), "user": str(intruder.pk), "role": Role.VIEWER}]
    staff_client.post(reverse("admin:organizations_organization_change", args=[org.pk]),
                      _inline_data(org, rows, initial=2))
    assert not Membership.objects.filter(user=intruder).exists()
    assert Membership.objects.filter(pk=member.pk, user__username="original").exists()
