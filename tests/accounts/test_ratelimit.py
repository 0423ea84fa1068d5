"""Login and code rate limits: counted in Redis, 429 past the limit without checking the secret, reset
when the window ends, and open (with a warning) when Redis is unreachable."""

from __future__ import annotations

import logging
import time

import pytest
from django.contrib.auth import SESSION_KEY
from django.test import Client

from apps.audit.models import AuditEvent
from tests.accounts.conftest import code_for, login, verify

pytestmark = pytest.mark.django_db


@pytest.fixture
def small_limit(settings):
    settings.FIBERSTACK_LOGIN_RATE_LIMIT = 3
    # Long enough that a loaded CI machine finishes the attempts inside one window.
    settings.FIBERSTACK_LOGIN_RATE_WINDOW = 4


def test_login_answers_429_after_the_limit_without_checking_the_password(client, member_ro, small_limit):
    for _ in range(3):
        assert login(client, "bob", "wrong password").status_code == 200
    response = login(client, "bob")  # the right password, but the limit is reached
    assert response.status_code == 429
    assert b"Too many failed attempts" in response.content
    assert SESSION_KEY not in client.session
    # The fourth attempt never reached authenticate(): three failed-login audit rows, no login.
    assert AuditEvent.objects.filter(action="user.login_failed").count() == 3
    assert not AuditEvent.objects.filter(action="user.login").exists()


def test_login_limit_resets_after_the_window(client, member_ro, small_limit):
    for _ in range(3):
        login(client, "bob", "wrong password")
    assert login(client, "bob").status_code == 429
    time.sleep(4.5)
    assert login(client, "bob").status_code == 302


def test_login_limit_counts_per_username_across_addresses(member_ro, small_limit):
    for n in range(3):
        login(Client(REMOTE_ADDR=f"10.0.0.{n + 1}"), "BOB", "wrong password")
    assert login(Client(REMOTE_ADDR="10.0.0.99"), "bob").status_code == 429


def test_login_limit_counts_per_address_across_usernames(member_ro, small_limit):
    client = Client(REMOTE_ADDR="10.9.9.9")
    for name in ["mallory", "trent", "eve"]:
        login(client, name, "guess")
    assert login(client, "bob").status_code == 429
    assert login(Client(REMOTE_ADDR="10.9.9.10"), "bob").status_code == 302


def test_a_correct_password_clears_the_username_counter(client, member_ro, settings):
    settings.FIBERSTACK_LOGIN_RATE_LIMIT = 3
    for _ in range(2):
        login(Client(REMOTE_ADDR="10.1.1.1"), "bob", "wrong password")
    assert login(Client(REMOTE_ADDR="10.1.1.2"), "bob").status_code == 302
    for _ in range(2):
        login(Client(REMOTE_ADDR="10.1.1.3"), "bob", "wrong password")
    assert login(Client(REMOTE_ADDR="10.1.1.4"), "bob").status_code == 302


def test_code_step_answers_429_after_the_limit(client, member_ro, enrol, small_limit):
    device = enrol(member_ro)
    login(client, "bob")
    for _ in range(3):
        assert verify(client, "000000").status_code == 200
    assert verify(client, code_for(device)).status_code == 429
    assert SESSION_KEY not in client.session
    time.sleep(4.5)
    assert verify(client, code_for(device)).status_code == 302
    assert client.session[SESSION_KEY] == str(member_ro.pk)


def test_limit_fails_open_with_a_warning_when_redis_is_unreachable(client, member_ro, settings, small_limit,
                                                                   caplog):
    settings.CACHES = {"default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens on port 1
        "OPTIONS": {"CLIENT_CLASS": "django_redis.client.DefaultClient", "IGNORE_EXCEPTIONS": True,
                    "SOCKET_CONNECT_TIMEOUT": 1, "SOCKET_TIMEOUT": 1},
    }}
    with caplog.at_level(logging.WARNING, logger="apps.accounts.ratelimit"):
        for _ in range(5):
            assert login(client, "bob", "wrong password").status_code == 200
    assert "failing open" in caplog.text
    assert login(client, "bob").status_code == 302
