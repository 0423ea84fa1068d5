from __future__ import annotations

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Sign-in for dashboard users: login, logout, password reset, TOTP two-factor, sessions."""

    name = "apps.accounts"
    label = "accounts"
