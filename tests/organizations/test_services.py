"""Membership services: the owner rules every door relies on (API, admin, commands), audit in the same
transaction, and the last-owner rule under concurrency."""

from __future__ import annotations

import threading
import time

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction

from apps.audit.models import AuditEvent
from apps.core.roles import Role
from apps.organizations.models import AgentToken, Membership
from apps.organizations.services import (
    LastOwnerError,
    add_member,
    change_role,
    ensure_member,
    issue_token,
    remove_member,
)
from tests.organizations.factories import MembershipFactory, OrganizationFactory, UserFactory

OWNER, ADMIN, EDITOR, VIEWER = Role.OWNER, Role.ADMIN, Role.EDITOR, Role.VIEWER


def _owner(org, name="solo"):
    return MembershipFactory(organization=org, user=UserFactory(username=name), role=OWNER)


@pytest.mark.django_db
@pytest.mark.parametrize("new_role", [ADMIN, EDITOR, VIEWER])
def test_the_last_owner_cannot_be_demoted(org, new_role):
    membership = _owner(org)
    with pytest.raises(LastOwnerError, match="last owner"):
        change_role(membership=membership, role=new_role, actor=None)
    membership.refresh_from_db()
    assert membership.role == OWNER
    assert not AuditEvent.objects.filter(action="membership.updated").exists()


@pytest.mark.django_db
def test_the_last_owner_cannot_be_removed(org):
    membership = _owner(org)
    with pytest.raises(LastOwnerError, match="last owner"):
        remove_member(membership=membership, actor=None)
    assert Membership.objects.filter(pk=membership.pk).exists()


@pytest.mark.django_db
def test_an_owner_may_leave_when_another_owner_stays(org):
    leaving = _owner(org, "leaving")
    _owner(org, "staying")
    remove_member(membership=leaving, actor=None)
    assert list(Membership.objects.filter(organization=org).values_list("role", flat=True)) == [OWNER]
    assert AuditEvent.objects.get(action="membership.deleted").changes["role"] == [OWNER, None]


@pytest.mark.django_db
def test_owners_of_other_organizations_do_not_count(org, other_org):
    membership = _owner(org)
    _owner(other_org, "elsewhere")
    with pytest.raises(LastOwnerError):
        change_role(membership=membership, role=ADMIN, actor=None)


@pytest.mark.django_db
@pytest.mark.parametrize(("acting_role", "allowed"), [(OWNER, True), (ADMIN, False), (None, True)])
def test_only_owners_grant_owner(org, acting_role, allowed):
    user = UserFactory(username="candidate")
    if allowed:
        assert add_member(organization=org, user=user, role=OWNER, actor=None, acting_role=acting_role).role == OWNER
    else:
        with pytest.raises(PermissionDenied):
            add_member(organization=org, user=user, role=OWNER, actor=None, acting_role=acting_role)
        assert not Membership.objects.filter(user=user).exists()


@pytest.mark.django_db
def test_an_admin_cannot_change_an_owner(org):
    _owner(org, "first")
    second = _owner(org, "second")
    with pytest.raises(PermissionDenied):
        change_role(membership=second, role=VIEWER, actor=None, acting_role=ADMIN)
    with pytest.raises(PermissionDenied):
        remove_member(membership=second, actor=None, acting_role=ADMIN)
    second.refresh_from_db()
    assert second.role == OWNER


@pytest.mark.django_db
def test_adding_a_member_twice_is_a_validation_error_naming_the_user(org):
    user = UserFactory(username="twice")
    add_member(organization=org, user=user, role=VIEWER, actor=None)
    with pytest.raises(ValidationError) as raised:
        add_member(organization=org, user=user, role=EDITOR, actor=None)
    assert "user" in raised.value.message_dict
    assert Membership.objects.get(organization=org, user=user).role == VIEWER


@pytest.mark.django_db
def test_an_unknown_role_is_refused(org):
    with pytest.raises(ValidationError) as raised:
        add_member(organization=org, user=UserFactory(), role="root", actor=None)
    assert "role" in raised.value.message_dict


@pytest.mark.django_db
def test_a_role_change_is_audited_and_a_no_op_is_not(org):
    membership = MembershipFactory(organization=org, role=VIEWER)
    change_role(membership=membership, role=VIEWER, actor=None)
    assert not AuditEvent.objects.filter(action="membership.updated").exists()
    change_role(membership=membership, role=EDITOR, actor=None)
    assert AuditEvent.objects.get(action="membership.updated").changes == {"role": [VIEWER, EDITOR]}


@pytest.mark.django_db
def test_ensure_member_creates_a_user_without_a_usable_password(org):
    outcome = ensure_member(organization=org, username="newcomer", role=None, email="n@example.com", actor=None)
    user = outcome.membership.user
    assert (outcome.user_created, outcome.change, outcome.membership.role) == (True, "added", VIEWER)
    assert user.email == "n@example.com"
    assert not user.has_usable_password()
    actions = list(AuditEvent.objects.order_by("id").values_list("action", flat=True))
    assert actions == ["user.created", "membership.created"]
    assert "password" not in AuditEvent.objects.get(action="user.created").changes


@pytest.mark.django_db
@pytest.mark.parametrize(("username", "email", "field"), [("bad name!", "", "username"),
                                                          ("fine", "not-an-address", "email")])
def test_ensure_member_names_the_bad_field_and_creates_nothing(org, username, email, field):
    with pytest.raises(ValidationError) as raised:
        ensure_member(organization=org, username=username, role=None, email=email, actor=None)
    assert field in raised.value.message_dict
    assert not Membership.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(("given", "stored"), [("write", "ingest"), ("ingest", "ingest"), ("read", "read"),
                                               ("config", "config")])
def test_issue_token_stores_the_canonical_scope(org, given, stored):
    token, _ = issue_token(organization=org, name="t", scope=given, actor=None)
    token.refresh_from_db()
    assert token.scope == stored


@pytest.mark.django_db
def test_issue_token_refuses_an_unknown_scope(org):
    with pytest.raises(ValidationError) as raised:
        issue_token(organization=org, name="t", scope="everything", actor=None)
    assert "scope" in raised.value.message_dict
    assert not AgentToken.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_demotions_of_the_last_two_owners_leave_one_owner():
    """Two admins demote the organization's two owners at the same moment. The second must wait for the
    first's lock and then see only one owner left; without the lock both would pass the check."""
    org = OrganizationFactory()
    first, second = _owner(org, "first"), _owner(org, "second")
    first_done, release = threading.Event(), threading.Event()
    results: dict[str, str] = {}

    def demote_first() -> None:
        try:
            with transaction.atomic():
                change_role(membership=first, role=VIEWER, actor=None)
                first_done.set()
                release.wait(10)  # hold the lock while the second demotion starts
            results["first"] = "demoted"
        finally:
            connection.close()

    def demote_second() -> None:
        first_done.wait(10)
        try:
            change_role(membership=second, role=VIEWER, actor=None)
            results["second"] = "demoted"
        except LastOwnerError:
            results["second"] = "refused"
        finally:
            connection.close()

    threads = [threading.Thread(target=demote_first), threading.Thread(target=demote_second)]
    for thread in threads:
        thread.start()
    assert first_done.wait(10)
    time.sleep(0.5)
    assert threads[1].is_alive(), "the second demotion did not wait for the first one's lock"
    release.set()
    for thread in threads:
        thread.join(10)
    assert results == {"first": "demoted", "second": "refused"}
    assert list(Membership.objects.filter(organization=org, role=OWNER).values_list("user__username",
                                                                                   flat=True)) == ["second"]
