"""TOTP enrolment, the second sign-in step (authenticator or backup code), backup codes, disabling."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import SESSION_KEY
from django.test import Client
from django.urls import reverse
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from apps.audit.models import AuditEvent
from tests.accounts.conftest import code_for, login, verify

pytestmark = pytest.mark.django_db


def _actions(user) -> list[str]:
    return list(AuditEvent.objects.filter(actor_user_id=user.pk).order_by("id").values_list("action", flat=True))


def test_enrolment_shows_a_qr_code_and_secret_and_confirms_with_a_code(member_ro, signed_in):
    client = signed_in(member_ro)
    page = client.get(reverse("accounts:totp_setup"))
    assert page.status_code == 200
    device = TOTPDevice.objects.get(user=member_ro)
    assert device.confirmed is False
    body = page.content.decode()
    assert "<svg" in body and "<script" not in body
    assert page.context["secret"].replace(" ", "") in body.replace(" ", "")
    # Reloading shows the same pending device, not a new one.
    client.get(reverse("accounts:totp_setup"))
    assert TOTPDevice.objects.filter(user=member_ro).count() == 1

    response = client.post(reverse("accounts:totp_setup"), {"code": code_for(device)})
    assert response.status_code == 200
    device.refresh_from_db()
    assert device.confirmed is True
    codes = response.context["codes"]
    assert len(codes) == 10 == len(set(codes))
    assert StaticToken.objects.filter(device__user=member_ro).count() == 10
    assert all(code in response.content.decode() for code in codes)
    assert client.session[DEVICE_ID_SESSION_KEY] == device.persistent_id
    assert "user.2fa_enabled" in _actions(member_ro)
    assert "user.backup_codes_generated" in _actions(member_ro)


def test_enrolment_rejects_a_wrong_code_and_keeps_the_device_unconfirmed(member_ro, signed_in):
    client = signed_in(member_ro)
    client.get(reverse("accounts:totp_setup"))
    response = client.post(reverse("accounts:totp_setup"), {"code": "123456"})
    assert response.status_code == 200
    assert b"That code is not valid" in response.content
    assert TOTPDevice.objects.get(user=member_ro).confirmed is False
    assert "user.2fa_enabled" not in _actions(member_ro)


def test_login_with_a_device_needs_the_code_before_the_session_is_logged_in(client, member_ro, enrol):
    device = enrol(member_ro)
    response = login(client, "bob")
    assert response["Location"] == reverse("accounts:login_verify")
    assert SESSION_KEY not in client.session
    assert not AuditEvent.objects.filter(action="user.login").exists()
    # Half-way, nothing else is reachable.
    assert client.get(reverse("accounts:security")).status_code == 302
    assert client.get("/acme/")["Location"].startswith(reverse("accounts:login"))

    page = client.get(reverse("accounts:login_verify"))
    assert b"bob" in page.content
    response = verify(client, code_for(device))
    assert response.status_code == 302
    assert response["Location"] == reverse("accounts_home:home")
    assert client.session[SESSION_KEY] == str(member_ro.pk)
    assert client.session[DEVICE_ID_SESSION_KEY] == device.persistent_id
    assert AuditEvent.objects.filter(action="user.login", actor_user_id=member_ro.pk).count() == 1
    assert client.get(reverse("accounts:security")).status_code == 200


def test_a_wrong_code_is_rejected_and_audited(client, member_ro, enrol):
    enrol(member_ro)
    login(client, "bob")
    response = verify(client, "000000")
    assert response.status_code == 200
    assert b"That code is not valid" in response.content
    assert SESSION_KEY not in client.session
    failed = AuditEvent.objects.get(action="user.2fa_failed")
    assert failed.actor_user_id == member_ro.pk
    assert failed.changes["method"] == "totp"


def test_a_totp_code_cannot_be_replayed(member_ro, enrol):
    device = enrol(member_ro)
    code = code_for(device)
    first, second = Client(), Client()
    login(first, "bob")
    login(second, "bob")
    assert verify(first, code).status_code == 302
    assert verify(second, code).status_code == 200
    assert SESSION_KEY not in second.session


def test_login_with_a_backup_code_works_once(member_ro, enrol, backup_codes_for):
    enrol(member_ro)
    code = backup_codes_for(member_ro)[0]
    client = Client()
    login(client, "bob")
    response = verify(client, code.upper())  # typed by hand: case does not matter
    assert response.status_code == 302
    assert client.session[SESSION_KEY] == str(member_ro.pk)
    assert StaticToken.objects.filter(device__user=member_ro).count() == 9

    again = Client()
    login(again, "bob")
    assert verify(again, code).status_code == 200
    assert SESSION_KEY not in again.session
    assert AuditEvent.objects.get(action="user.2fa_failed").changes["method"] == "backup_code"


def test_the_pending_step_expires(client, member_ro, enrol):
    device = enrol(member_ro)
    login(client, "bob")
    session = client.session
    session["accounts_pending_2fa"]["started"] -= 301
    session.save()
    response = verify(client, code_for(device))
    assert response["Location"] == reverse("accounts:login")
    assert SESSION_KEY not in client.session


def test_regenerating_backup_codes_replaces_the_old_ones(member_ro, enrol, backup_codes_for, signed_in):
    device = enrol(member_ro)
    old = backup_codes_for(member_ro)
    client = signed_in(member_ro, device)
    response = client.post(reverse("accounts:backup_codes"))
    assert response.status_code == 200
    new = response.context["codes"]
    assert len(new) == 10
    assert set(StaticToken.objects.filter(device__user=member_ro).values_list("token", flat=True)) == set(new)
    assert not set(old) & set(new)
    assert StaticDevice.objects.filter(user=member_ro).count() == 1
    assert _actions(member_ro).count("user.backup_codes_generated") == 2


def test_disabling_two_factor_needs_a_current_code(member_ro, enrol, signed_in):
    device = enrol(member_ro)
    client = signed_in(member_ro, device)
    response = client.post(reverse("accounts:totp_disable"), {"code": "000000"})
    assert response.status_code == 400
    assert TOTPDevice.objects.filter(user=member_ro).exists()
    assert "user.2fa_disabled" not in _actions(member_ro)

    response = client.post(reverse("accounts:totp_disable"), {"code": code_for(device, steps_ahead=1)})
    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(user=member_ro).exists()
    assert not StaticDevice.objects.filter(user=member_ro).exists()
    assert "user.2fa_disabled" in _actions(member_ro)
    # The next sign-in is password only.
    assert login(Client(), "bob")["Location"] == reverse("accounts_home:home")


def test_security_page_offers_enrolment_when_not_required(member_ro, signed_in):
    page = signed_in(member_ro).get(reverse("accounts:security"))
    assert page.status_code == 200
    assert b"Two-factor sign-in is off" in page.content
    assert reverse("accounts:totp_setup").encode() in page.content


def test_backup_codes_are_not_shown_on_the_security_page(member_ro, enrol, backup_codes_for, signed_in):
    device = enrol(member_ro)
    codes = backup_codes_for(member_ro)
    page = signed_in(member_ro, device).get(reverse("accounts:security")).content.decode()
    assert "10 backup codes left" in re.sub(r"\s+", " ", page)
    assert not any(code in page for code in codes)


def test_disabling_without_two_factor_is_a_no_op(member_ro, signed_in):
    response = signed_in(member_ro).post(reverse("accounts:totp_disable"), {"code": "000000"})
    assert response["Location"] == reverse("accounts:security")
    assert not AuditEvent.objects.filter(action__startswith="user.2fa").exists()


def test_an_enrolled_user_cannot_use_the_security_actions_from_an_unverified_session(member_ro, enrol):
    enrol(member_ro)
    client = Client()
    client.force_login(member_ro)  # a password-only session, e.g. from before enrolment
    for name in ["accounts:security", "accounts:backup_codes", "accounts:sessions_revoke_others"]:
        response = client.post(reverse(name)) if name != "accounts:security" else client.get(reverse(name))
        assert response["Location"].startswith(reverse("accounts:login_verify"))
    assert not AuditEvent.objects.filter(action="user.backup_codes_generated").exists()
