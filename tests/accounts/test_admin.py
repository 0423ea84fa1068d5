"""Users, groups and 2FA devices edited in the Django admin are audited like tenant models."""

from __future__ import annotations

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice

from apps.audit.models import AuditEvent
from tests.organizations.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser():
    user = UserFactory(username="root")
    user.is_staff = user.is_superuser = True
    user.save()
    return user


@pytest.fixture
def admin_client(client, superuser):
    client.force_login(superuser)
    return client


def test_changing_a_user_in_the_admin_is_audited_with_a_diff(admin_client, superuser, member_ro):
    url = f"/admin/auth/user/{member_ro.pk}/change/"
    form = admin_client.get(url).context["adminform"].form
    data = {key: value for key, value in form.initial.items() if value is not None and key != "password"}
    data.update({"username": member_ro.username, "is_staff": "on", "date_joined_0": "2026-01-01",
                 "date_joined_1": "00:00:00", "groups": [], "user_permissions": []})
    data.pop("last_login", None)
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    event = AuditEvent.objects.get(action="user.updated")
    assert event.actor_user_id == superuser.pk
    assert event.changes["is_staff"] == [False, True]
    assert "password" not in event.changes


def test_admin_password_change_is_audited_without_the_password(admin_client, member_ro):
    response = admin_client.post(
        f"/admin/auth/user/{member_ro.pk}/password/",
        {"password1": "a new long passphrase 42", "password2": "a new long passphrase 42",
         "usable_password": "true"},
    )
    assert response.status_code == 302
    event = AuditEvent.objects.get(action="user.password_changed_by_admin")
    assert event.object_id == str(member_ro.pk)
    assert "passphrase" not in str(event.changes)
    member_ro.refresh_from_db()
    assert member_ro.check_password("a new long passphrase 42")


def test_deleting_a_totp_device_in_the_admin_is_audited(admin_client, member_ro):
    device = TOTPDevice.objects.create(user=member_ro, name="phone", confirmed=True)
    response = admin_client.post(f"/admin/otp_totp/totpdevice/{device.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(pk=device.pk).exists()
    assert AuditEvent.objects.filter(action="totp_device.deleted").count() == 1


def test_non_staff_cannot_open_the_user_admin(client, member_ro):
    client.force_login(member_ro)
    response = client.get("/admin/auth/user/")
    assert response.status_code == 302
    assert "/login/" in response["Location"]
