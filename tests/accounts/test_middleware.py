"""Two-factor enforcement: who is sent to enrolment or to the code prompt, and which paths are exempt."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from django.test import Client
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.accounts.conftest import code_for
from tests.organizations.factories import UserFactory

pytestmark = pytest.mark.django_db

SETUP = reverse("accounts:totp_setup")
VERIFY = reverse("accounts:login_verify")


@pytest.fixture
def enforce(settings):
    settings.FIBERSTACK_REQUIRE_2FA_FOR_ADMINS = True


@pytest.fixture
def staff(db):
    return UserFactory(username="root", is_staff=True, is_superuser=True)


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("role_fixture", ["owner", "admin_member"])
def test_owners_and_admins_without_a_device_are_sent_to_enrolment_when_enforced(request, enforce, role_fixture):
    user = request.getfixturevalue(role_fixture)
    response = _client(user).get("/acme/")
    assert response.status_code == 302
    assert response["Location"] == f"{SETUP}?next={quote('/acme/', safe='')}"


@pytest.mark.parametrize("role_fixture", ["editor", "member_ro"])
def test_editors_and_viewers_are_not_forced(request, enforce, role_fixture):
    user = request.getfixturevalue(role_fixture)
    assert _client(user).get("/")["Location"] == "/acme/"  # home sends them on to their organization


def test_nothing_is_forced_when_the_setting_is_off(settings, owner, staff):
    settings.FIBERSTACK_REQUIRE_2FA_FOR_ADMINS = False
    assert _client(owner).get("/")["Location"] == "/acme/"
    assert _client(staff).get("/admin/").status_code == 200


def test_staff_are_sent_to_enrolment_from_the_admin_when_enforced(enforce, staff):
    response = _client(staff).get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith(SETUP)


def test_an_unverified_session_of_an_enrolled_user_is_sent_to_the_code_prompt(settings, owner, enrol):
    settings.FIBERSTACK_REQUIRE_2FA_FOR_ADMINS = False  # a user with a device is always asked
    device = enrol(owner)
    client = _client(owner)
    response = client.get("/acme/")
    assert response["Location"] == f"{VERIFY}?next={quote('/acme/', safe='')}"
    response = client.post(f"{VERIFY}?next=/acme/", {"code": code_for(device)})
    assert response["Location"] == "/acme/"
    assert client.get("/")["Location"] == "/acme/"


def test_enrolment_through_the_pages_unlocks_the_admin(enforce, staff):
    client = _client(staff)
    client.get(SETUP)
    device = TOTPDevice.objects.get(user=staff)
    assert client.post(SETUP, {"code": code_for(device), "next": "/admin/"}).status_code == 200
    assert client.get("/admin/").status_code == 200


def test_exempt_paths_pass_for_an_unverified_admin(enforce, owner):
    client = _client(owner)
    assert client.get("/healthz").status_code == 200
    assert client.get(reverse("accounts:security")).status_code == 200
    assert client.get(SETUP).status_code == 200
    assert client.post(reverse("accounts:logout")).status_code == 302


def test_the_session_api_is_no_way_around_the_second_factor(enforce, owner, editor, read_token):
    response = _client(owner).get("/api/v1/organization")
    assert response.status_code == 403
    assert "Two-factor" in response.json()["detail"]
    # Roles that are not forced keep the session API; agent tokens never involve a session.
    assert _client(editor).get("/api/v1/organization").status_code == 200
    assert Client().get("/api/v1/organization", HTTP_AUTHORIZATION=f"Bearer {read_token}").status_code == 200
    # Token doors stay open even when the browser also sends an unverified session cookie.
    assert _client(owner).get("/ping").status_code == 204


def test_an_enrolled_users_unverified_session_cannot_use_the_api(settings, owner, enrol):
    settings.FIBERSTACK_REQUIRE_2FA_FOR_ADMINS = False
    enrol(owner)
    assert _client(owner).get("/api/v1/organization").status_code == 403


def test_admin_login_goes_through_our_login_page(client, db):
    response = client.get("/admin/login/?next=/admin/auth/user/")
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('accounts:login')}?next={quote('/admin/auth/user/', safe='')}"


def test_anonymous_users_are_left_to_login_required(client, enforce, db):
    response = client.get("/acme/")
    assert response["Location"].startswith(reverse("accounts:login"))
