"""Fixtures for sign-in tests: authenticator devices, codes computed from their keys, and a client
that logs in through the real login form."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from apps.accounts import services
from tests.browser import asgi_server, browser, browser_pages, signed_in_page  # noqa: F401  (fixtures)
from tests.conftest import PASSWORD

SESSION_ACTIVITY = "apps.accounts.middleware.SessionActivityMiddleware"
ENFORCEMENT = "apps.accounts.middleware.TwoFactorEnforcementMiddleware"


@pytest.fixture(autouse=True)
def _accounts_settings(settings: Any) -> None:
    """Session bookkeeping on (until settings list it), and django-otp's per-device back-off off so
    that a wrong code followed at once by a right one is not refused for a second."""
    if SESSION_ACTIVITY not in settings.MIDDLEWARE:
        middleware = list(settings.MIDDLEWARE)
        middleware.insert(middleware.index(ENFORCEMENT) + 1, SESSION_ACTIVITY)
        settings.MIDDLEWARE = middleware
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    settings.OTP_STATIC_THROTTLE_FACTOR = 0


def code_for(device: TOTPDevice, steps_ahead: int = 0) -> str:
    """The code the user's phone shows now (or `steps_ahead` 30-second steps later)."""
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time() + steps_ahead * device.step
    return f"{totp.token():0{device.digits}d}"


@pytest.fixture
def enrol() -> Callable[[Any], TOTPDevice]:
    """Give a user a confirmed authenticator (as if enrolled earlier)."""

    def make(user: Any) -> TOTPDevice:
        return TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=True)

    return make


@pytest.fixture
def backup_codes_for() -> Callable[[Any], list[str]]:
    def make(user: Any) -> list[str]:
        return services.generate_backup_codes(user=user)

    return make


def login(client: Client, username: str, password: str = PASSWORD, **extra: Any) -> Any:
    return client.post(reverse("accounts:login"), {"username": username, "password": password}, **extra)


def verify(client: Client, code: str, **extra: Any) -> Any:
    return client.post(reverse("accounts:login_verify"), {"code": code}, **extra)


@pytest.fixture
def signed_in() -> Callable[..., Client]:
    """A client signed in through the login form (and the code step when the user has a device)."""

    def make(user: Any, device: TOTPDevice | None = None, user_agent: str = "pytest", ip: str = "10.0.0.1") -> Client:
        client = Client(HTTP_USER_AGENT=user_agent, REMOTE_ADDR=ip)
        response = login(client, user.username)
        assert response.status_code == 302, response.content
        if device is not None:
            assert verify(client, code_for(device)).status_code == 302
        return client

    return make
