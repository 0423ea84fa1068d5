"""Password reset is limited per normalised address and per client address, and answers the same
whether or not an account uses the address -- also when limited."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from apps.accounts.views import TOO_MANY_RESETS

pytestmark = pytest.mark.django_db

RESET = reverse("accounts:password_reset")
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="[^"]*"')


@pytest.fixture
def small_limit(settings):
    settings.FIBERSTACK_PASSWORD_RESET_RATE_LIMIT = 2
    settings.FIBERSTACK_PASSWORD_RESET_RATE_WINDOW = 60


def ask(email: str, ip: str = "192.0.2.1", **extra):
    return Client(REMOTE_ADDR=ip).post(RESET, {"email": email}, **extra)


def test_requests_for_one_address_are_limited_across_client_addresses(member_ro, small_limit):
    assert ask("bob@example.com", "192.0.2.1").status_code == 302
    assert ask("BOB@Example.com", "192.0.2.2").status_code == 302
    response = ask("\uff42\uff4f\uff42@example.com", "192.0.2.3")  # fullwidth letters: the same address after NFKC
    assert response.status_code == 429
    assert TOO_MANY_RESETS in response.content.decode()
    assert len(mail.outbox) == 2


def test_requests_from_one_client_are_limited_across_addresses(member_ro, small_limit):
    assert ask("a@example.com").status_code == 302
    assert ask("b@example.com").status_code == 302
    assert ask("bob@example.com").status_code == 429
    assert mail.outbox == []
    assert ask("bob@example.com", "192.0.2.200").status_code == 302
    assert len(mail.outbox) == 1


def test_the_reply_does_not_tell_whether_an_account_exists(member_ro, small_limit):
    replies = {}
    for email in ["bob@example.com", "nobody@example.com"]:
        first = ask(email, "192.0.2.10")
        ask(email, "192.0.2.11")
        limited = ask(email, "192.0.2.12")
        replies[email] = (first.status_code, first["Location"], limited.status_code,
                          CSRF.sub("", limited.content.decode().replace(email, "EMAIL")))
    assert replies["bob@example.com"] == replies["nobody@example.com"]
    assert replies["bob@example.com"][:3] == (302, reverse("accounts:password_reset_done"), 429)
    assert len(mail.outbox) == 2  # both to bob; nothing to the unknown address


def test_clients_behind_a_trusted_proxy_are_limited_one_by_one(member_ro, small_limit, settings):
    settings.FIBERSTACK_TRUSTED_PROXIES = ["10.0.0.0/8"]
    for email in ["a@example.com", "b@example.com"]:
        ask(email, "10.0.0.2", HTTP_X_FORWARDED_FOR="203.0.113.7")
    assert ask("c@example.com", "10.0.0.2", HTTP_X_FORWARDED_FOR="203.0.113.7").status_code == 429
    assert ask("c@example.com", "10.0.0.2", HTTP_X_FORWARDED_FOR="203.0.113.8").status_code == 302


def test_an_invalid_address_is_a_form_error_and_not_counted(member_ro, small_limit):
    for _ in range(3):
        response = ask("not an address")
        assert response.status_code == 200
        assert response.context["form"].errors["email"]
    assert ask("bob@example.com").status_code == 302
