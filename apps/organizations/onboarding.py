"""Set-password links for accounts created without a password (`manage.py add_member`): Django's
password-reset token on the existing reset-confirm page, so there is one way to set a password. The
token is bound to the password hash and last login, so the link dies once used, and after
PASSWORD_RESET_TIMEOUT."""

from __future__ import annotations

import datetime

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.tokens import default_token_generator
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

#: The reset-confirm page (apps/accounts/urls.py), named by URL, not imported: accounts sits above us.
SET_PASSWORD_URL_NAME = "accounts:password_reset_confirm"


def set_password_url(user: AbstractBaseUser) -> str:
    """An absolute, single-use link where `user` chooses a password (FIBERSTACK_BASE_URL + the path)."""
    path = reverse(SET_PASSWORD_URL_NAME, kwargs={"uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
                                                  "token": default_token_generator.make_token(user)})
    return settings.FIBERSTACK_BASE_URL.rstrip("/") + path


def link_lifetime() -> datetime.timedelta:
    return datetime.timedelta(seconds=settings.PASSWORD_RESET_TIMEOUT)
