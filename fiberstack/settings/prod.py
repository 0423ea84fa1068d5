"""Production settings: everything strict; secrets must come from the environment."""

from __future__ import annotations

from fiberstack.settings.base import *  # noqa: F403
from fiberstack.settings.env import env_bool, env_int, env_secret

DEBUG = False
SECRET_KEY = env_secret("SECRET_KEY")
TOKEN_PEPPER = env_secret("TOKEN_PEPPER", SECRET_KEY)
FIBERSTACK_REQUIRE_2FA_FOR_ADMINS = env_bool("FIBERSTACK_REQUIRE_2FA_FOR_ADMINS", True)

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
# /healthz and /readyz are probed over plain HTTP by load balancers inside the network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_SECURE = True
X_FRAME_OPTIONS = "DENY"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
