"""Two middlewares for signed-in users: two-factor enforcement and session bookkeeping.

Both sit after AuthenticationMiddleware and django_otp's OTPMiddleware (which sets
`request.user.is_verified()`)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.urls import reverse

from apps.accounts.services import record_session_activity
from apps.accounts.twofactor import has_two_factor, two_factor_required
from apps.core.client_ip import client_ip

# Token-authenticated doors (REST API, Influx/Prometheus-compatible ingest) and probes: no session to
# verify. Matched as whole path segments so an organization slug like "writers" is not exempt.
EXEMPT_PATHS = ("/api", "/write", "/ping", "/query", "/healthz", "/readyz")
# Of those, the ones that also answer a session cookie: an unverified session gets a JSON 403 there, so
# the API is not a way around the second factor.
SESSION_API_PATHS = ("/api",)
SESSION_TOUCH_SECONDS = 60


def _is_exempt(path: str) -> bool:
    static_url = settings.STATIC_URL or ""
    if static_url.startswith("/") and path.startswith(static_url):
        return True
    return _matches(path, EXEMPT_PATHS)


def _matches(path: str, prefixes: tuple[str, ...]) -> bool:
    return any(path == prefix or path.startswith(prefix + "/") for prefix in prefixes)


def _redirect_with_next(url_name: str, next_url: str) -> HttpResponseRedirect:
    return HttpResponseRedirect(f"{reverse(url_name)}?{urlencode({'next': next_url})}")


class TwoFactorEnforcementMiddleware:
    """Keep a signed-in but not OTP-verified session out of every page except the accounts pages:

    - a user with a confirmed authenticator goes to the code prompt, always (whatever the setting),
      so a password-only session — e.g. from before enrolment — cannot skip the second factor;
    - when FIBERSTACK_REQUIRE_2FA_FOR_ADMINS is on, staff and organization owners/admins without one
      go to enrolment. This includes /admin/.

    The admin's own login form is sent to ours, so the admin door has the same rate limit and second
    step as every other."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view_func: Any, view_args: Any, view_kwargs: Any
    ) -> HttpResponse | None:
        match = request.resolver_match
        if match is not None and match.view_name == "admin:login":
            return _redirect_with_next("accounts:login", request.GET.get("next") or reverse("admin:index"))
        user = request.user
        if not user.is_authenticated:
            return None
        if _is_exempt(request.path_info):
            # request.user here comes from the session cookie (tokens are checked later, by DRF).
            if _matches(request.path_info, SESSION_API_PATHS) and not user.is_verified() and (  # type: ignore[union-attr]
                has_two_factor(user) or two_factor_required(user)
            ):
                return JsonResponse({"detail": "Two-factor verification is required for this session: sign in "
                                               "again with your authenticator code, or use an agent token."},
                                    status=403)
            return None
        if match is not None and match.namespace == "accounts":
            return None
        if user.is_verified():  # type: ignore[union-attr]
            return None
        if has_two_factor(user):
            return _redirect_with_next("accounts:login_verify", request.get_full_path())
        if two_factor_required(user):
            return _redirect_with_next("accounts:totp_setup", request.get_full_path())
        return None


class SessionActivityMiddleware:
    """Keep a UserSession row per signed-in session (IP, user agent, last activity) for the security
    page. A Redis key per session gates the database write to once a minute; if Redis is down the
    cache answers None and we write every request rather than lose track of sign-ins."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        # The session key first: it costs an attribute read, while ``user`` is lazy and resolving it is the
        # work an agent's token request (no session) should not pay. After login() this is the new, cycled
        # key; after logout() there is none.
        session = getattr(request, "session", None)
        session_key = session.session_key if session is not None else None
        if not session_key:
            return response
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return response
        gate = "accounts:seen:" + hashlib.sha256(session_key.encode()).hexdigest()[:32]
        if cache.add(gate, 1, timeout=SESSION_TOUCH_SECONDS) is False:
            return response
        record_session_activity(
            user=user, session_key=session_key, ip=client_ip(request),
            user_agent=request.headers.get("User-Agent", ""),
        )
        return response
