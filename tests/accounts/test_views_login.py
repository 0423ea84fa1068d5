"""Password sign-in, logout and password reset pages."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import SESSION_KEY
from django.core import mail
from django.test import Client
from django.urls import reverse

from apps.accounts.models import UserSession
from apps.audit.models import AuditEvent
from tests.accounts.conftest import login

pytestmark = pytest.mark.django_db


def test_login_page_renders_with_csrf_and_without_organization(client):
    response = client.get(reverse("accounts:login"))
    assert response.status_code == 200
    assert b"csrfmiddlewaretoken" in response.content
    assert "organization" not in response.context


def test_login_with_correct_password_logs_in_and_is_audited(client, member_ro):
    response = login(client, "bob")
    assert response.status_code == 302
    assert response["Location"] == reverse("accounts_home:home")
    assert client.session[SESSION_KEY] == str(member_ro.pk)
    assert AuditEvent.objects.filter(action="user.login", actor_user_id=member_ro.pk).count() == 1


def test_login_follows_a_safe_next_and_ignores_an_offsite_one(client, member_ro):
    response = client.post(reverse("accounts:login"),
                           {"username": "bob", "password": "correct horse battery", "next": "/acme/"})
    assert response["Location"] == "/acme/"
    client.logout()
    response = client.post(reverse("accounts:login"), {"username": "bob", "password": "correct horse battery",
                                                       "next": "https://evil.example/"})
    assert response["Location"] == reverse("accounts_home:home")


def test_login_with_wrong_password_fails_and_is_audited(client, member_ro):
    response = login(client, "bob", "wrong password")
    assert response.status_code == 200
    assert SESSION_KEY not in client.session
    assert b"Please enter a correct username and password" in response.content
    failed = AuditEvent.objects.get(action="user.login_failed")
    assert failed.object_repr == "bob"
    assert failed.object_id == str(member_ro.pk)


def test_logout_requires_post(client, member_ro):
    login(client, "bob")
    assert client.get(reverse("accounts:logout")).status_code == 405
    assert SESSION_KEY in client.session
    response = client.post(reverse("accounts:logout"))
    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:login")
    assert SESSION_KEY not in client.session
    assert AuditEvent.objects.filter(action="user.logout", actor_user_id=member_ro.pk).exists()


def test_logout_deletes_the_session_record(member_ro, signed_in):
    client = signed_in(member_ro)
    client.get(reverse("accounts:security"))
    assert UserSession.objects.filter(user=member_ro).count() == 1
    client.post(reverse("accounts:logout"))
    assert not UserSession.objects.filter(user=member_ro).exists()


def test_password_reset_sends_a_link_that_sets_a_new_password(client, member_ro, signed_in):
    elsewhere = signed_in(member_ro, user_agent="old laptop")
    elsewhere.get(reverse("accounts:security"))
    response = client.post(reverse("accounts:password_reset"), {"email": "bob@example.com"})
    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:password_reset_done")
    assert len(mail.outbox) == 1
    link = re.search(r"https?://[^/]+(/accounts/reset/\S+/)", mail.outbox[0].body).group(1)

    form_page = client.get(link, follow=True)
    assert form_page.status_code == 200
    assert form_page.context["validlink"] is True
    set_url = form_page.redirect_chain[-1][0]
    response = client.post(set_url, {"new_password1": "a fresh long passphrase", "new_password2":
                                     "a fresh long passphrase"})
    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:password_reset_complete")

    assert login(Client(), "bob", "a fresh long passphrase").status_code == 302
    # The session that knew the old password is gone, and the reset is audited.
    assert elsewhere.get(reverse("accounts:security")).status_code == 302
    assert AuditEvent.objects.get(action="user.password_reset").changes == {"sessions_ended": 1}


def test_password_reset_for_an_unknown_address_sends_nothing_and_says_the_same(client, db):
    response = client.post(reverse("accounts:password_reset"), {"email": "nobody@example.com"})
    assert response.status_code == 302
    assert mail.outbox == []
