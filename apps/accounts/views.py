"""Sign-in pages: password, second factor, logout, password reset, and the user's security page
(two-factor enrolment, backup codes, active sessions)."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth import login as auth_login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST
from django_otp import login as otp_login
from django_otp.plugins.otp_static.models import StaticDevice

from apps.accounts import ratelimit, services
from apps.accounts.forms import CodeForm, LoginForm
from apps.accounts.live import close_session_sockets_on_commit
from apps.accounts.models import UserSession
from apps.accounts.twofactor import (
    backup_codes_remaining,
    has_two_factor,
    qr_svg,
    totp_secret,
    two_factor_required,
)
from apps.core.client_ip import client_ip

# Between a correct password and a correct code the session holds only this, never the login itself.
PENDING_KEY = "accounts_pending_2fa"
PENDING_TTL_SECONDS = 300
TOO_MANY = "Too many failed attempts. Wait a few minutes and try again."
TOO_MANY_RESETS = ("Too many password-reset requests for this address or from your network. "
                   "Check your e-mail for a link already sent, or try again later.")


def _safe_next(request: HttpRequest, candidate: str | None = None) -> str:
    target = candidate if candidate is not None else request.POST.get("next") or request.GET.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                                  require_https=request.is_secure()):
        return target
    return reverse(settings.LOGIN_REDIRECT_URL)


def _with_next(url_name: str, next_url: str) -> HttpResponseRedirect:
    return HttpResponseRedirect(f"{reverse(url_name)}?{urlencode({'next': next_url})}")


def verified_if_enrolled(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """The accounts pages are exempt from the enforcement middleware (they must stay reachable), so the
    security-sensitive ones check here: an enrolled user must have passed the second factor."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if has_two_factor(request.user) and not request.user.is_verified():  # type: ignore[union-attr]
            return _with_next("accounts:login_verify", request.get_full_path())
        return view(request, *args, **kwargs)

    return login_required(wrapper)


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Send the user to their first organization, or show that they have none."""
    membership = request.user.memberships.select_related("organization").order_by("organization__name").first()
    if membership is not None:
        return redirect("dashboards:overview", org_slug=membership.organization.slug)
    return render(request, "accounts/no_organization.html")


@sensitive_post_parameters("password")
@csrf_protect
@never_cache
def login_view(request: HttpRequest) -> HttpResponse:
    """Step one: username and password. Users with an authenticator continue to `login_verify`
    without being logged in; others are logged in here."""
    next_url = _safe_next(request)
    if request.method != "POST":
        return render(request, "accounts/login.html", {"form": LoginForm(request), "next": next_url})
    username = request.POST.get("username", "")
    keys = ratelimit.login_keys(username, client_ip(request))
    if ratelimit.is_limited(keys):
        form = LoginForm(request, initial={"username": username})
        return render(request, "accounts/login.html", {"form": form, "next": next_url, "error": TOO_MANY},
                      status=429)
    form = LoginForm(request, data=request.POST)
    if not form.is_valid():
        if username and request.POST.get("password"):
            ratelimit.record_hit(keys)
        return render(request, "accounts/login.html", {"form": form, "next": next_url})
    user = form.get_user()
    ratelimit.reset(keys[:1])  # the username's counter; the IP's keeps counting
    if has_two_factor(user):
        request.session.cycle_key()
        request.session[PENDING_KEY] = {"user_id": user.pk, "backend": user.backend, "next": next_url,
                                        "started": time.time()}
        return redirect("accounts:login_verify")
    auth_login(request, user)
    return HttpResponseRedirect(next_url)


def _second_step_user(request: HttpRequest) -> tuple[Any, dict | None]:
    """Who is answering the code prompt: a user half-way through login (pending), or a signed-in user
    whose session was never verified (e.g. it predates enrolment)."""
    pending = request.session.get(PENDING_KEY)
    if pending and time.time() - pending.get("started", 0) <= PENDING_TTL_SECONDS:
        user = get_user_model()._default_manager.filter(pk=pending["user_id"], is_active=True).first()
        if user is not None:
            return user, pending
    if pending:
        del request.session[PENDING_KEY]
    user = request.user
    if user.is_authenticated and not user.is_verified() and has_two_factor(user):  # type: ignore[union-attr]
        return user, None
    return None, None


@csrf_protect
@never_cache
def login_verify(request: HttpRequest) -> HttpResponse:
    """Step two: an authenticator or backup code. Only now is the session logged in (firing
    `user_logged_in`) and marked OTP-verified."""
    user, pending = _second_step_user(request)
    if user is None:
        if request.user.is_authenticated:
            return HttpResponseRedirect(_safe_next(request))
        return redirect("accounts:login")
    next_url = _safe_next(request, pending["next"]) if pending else _safe_next(request)
    keys = ratelimit.otp_keys(user.pk)
    context: dict[str, Any] = {"form": CodeForm(), "pending_user": user, "next": next_url}
    if request.method != "POST":
        return render(request, "accounts/login_verify.html", context)
    if ratelimit.is_limited(keys):
        return render(request, "accounts/login_verify.html", {**context, "error": TOO_MANY}, status=429)
    form = context["form"] = CodeForm(request.POST)
    if form.is_valid():
        check = services.verify_second_factor(user=user, code=form.cleaned_data["code"])
        if check.ok:
            ratelimit.reset(keys)
            if pending is not None:
                del request.session[PENDING_KEY]
                auth_login(request, user, backend=pending["backend"])
            otp_login(request, check.device)
            if isinstance(check.device, StaticDevice):
                messages.warning(request, f"You signed in with a backup code; {backup_codes_remaining(user)} left.")
            return HttpResponseRedirect(next_url)
        ratelimit.record_hit(keys)
        form.add_error("code", "Too many wrong codes; wait a few seconds." if check.throttled
                       else "That code is not valid.")
    return render(request, "accounts/login_verify.html", context)


class LogoutView(auth_views.LogoutView):
    """POST only (Django ≥ 5 refuses GET): a link or image tag cannot sign a user out. Signing out also
    closes the session's live pages (other tabs would otherwise keep receiving updates)."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        session_key = request.session.session_key
        response = super().post(request, *args, **kwargs)
        if session_key:
            close_session_sockets_on_commit([session_key])
        return response


def _security_context(request: HttpRequest) -> dict[str, Any]:
    user = request.user
    current = request.session.session_key
    sessions = list(UserSession.objects.active().filter(user=user))
    for item in sessions:
        item.is_current = item.session_id == current  # type: ignore[attr-defined]
    return {
        "has_2fa": has_two_factor(user),
        "two_factor_required": two_factor_required(user),
        "backup_codes_remaining": backup_codes_remaining(user),
        "sessions": sessions,
        "code_form": CodeForm(),
    }


@verified_if_enrolled
def security(request: HttpRequest) -> HttpResponse:
    """The user's own security page: two-factor status and actions, and active sessions."""
    return render(request, "accounts/security.html", _security_context(request))


@never_cache
@verified_if_enrolled
def totp_setup(request: HttpRequest) -> HttpResponse:
    """Enrolment: show the QR code and secret of a pending authenticator; a valid code confirms it,
    marks this session verified and shows the first backup codes (once)."""
    user = request.user
    if has_two_factor(user):
        messages.info(request, "Two-factor sign-in is already on.")
        return redirect("accounts:security")
    device = services.start_totp_enrolment(user=user)
    next_url = _safe_next(request) if request.GET.get("next") or request.POST.get("next") else ""
    context: dict[str, Any] = {
        "form": CodeForm(), "qr_svg": qr_svg(device.config_url), "secret": totp_secret(device),
        "required": two_factor_required(user), "next": next_url,
    }
    if request.method != "POST":
        return render(request, "accounts/totp_setup.html", context)
    keys = ratelimit.otp_keys(user.pk)
    if ratelimit.is_limited(keys):
        return render(request, "accounts/totp_setup.html", {**context, "error": TOO_MANY}, status=429)
    form = context["form"] = CodeForm(request.POST)
    if form.is_valid():
        result = services.confirm_totp_device(user=user, device_id=device.pk, code=form.cleaned_data["code"])
        if result is not None:
            ratelimit.reset(keys)
            confirmed, codes = result
            otp_login(request, confirmed)
            return render(request, "accounts/backup_codes.html",
                          {"codes": codes, "just_enabled": True, "next": next_url})
        ratelimit.record_hit(keys)
        form.add_error("code", "That code is not valid. Check the time on your phone and try the next one.")
    return render(request, "accounts/totp_setup.html", context)


@require_POST
@never_cache
@verified_if_enrolled
def backup_codes(request: HttpRequest) -> HttpResponse:
    """Replace the backup codes and show the new ones once (they are never shown again)."""
    if not has_two_factor(request.user):
        messages.error(request, "Turn on two-factor sign-in first.")
        return redirect("accounts:security")
    codes = services.generate_backup_codes(user=request.user)
    return render(request, "accounts/backup_codes.html", {"codes": codes, "just_enabled": False})


@require_POST
@verified_if_enrolled
def totp_disable(request: HttpRequest) -> HttpResponse:
    """Turn two-factor off; needs a current authenticator or backup code."""
    user = request.user
    if not has_two_factor(user):
        return redirect("accounts:security")
    keys = ratelimit.otp_keys(user.pk)
    if ratelimit.is_limited(keys):
        return render(request, "accounts/security.html", {**_security_context(request), "error": TOO_MANY},
                      status=429)
    form = CodeForm(request.POST)
    if form.is_valid():
        if services.disable_two_factor(user=user, code=form.cleaned_data["code"]).ok:
            ratelimit.reset(keys)
            messages.success(request, "Two-factor sign-in is off.")
            return redirect("accounts:security")
        ratelimit.record_hit(keys)
        form.add_error("code", "That code is not valid.")
    return render(request, "accounts/security.html", {**_security_context(request), "code_form": form},
                  status=400)


@require_POST
@verified_if_enrolled
def session_revoke(request: HttpRequest, public_id: str) -> HttpResponse:
    """Sign out one other session. Another user's session id is a 404, like any object not ours."""
    user_session = get_object_or_404(UserSession, public_id=public_id, user=request.user)
    if user_session.session_id == request.session.session_key:
        messages.error(request, "That is this session: use Sign out.")
        return redirect("accounts:security")
    services.revoke_session(user=request.user, user_session=user_session)
    messages.success(request, "The session was signed out.")
    return redirect("accounts:security")


@require_POST
@verified_if_enrolled
def sessions_revoke_others(request: HttpRequest) -> HttpResponse:
    """Sign out every session of this user except the current one."""
    count = services.revoke_other_sessions(user=request.user, keep_session_key=request.session.session_key)
    messages.success(request, f"Signed out {count} other session(s).")
    return redirect("accounts:security")


class PasswordResetView(auth_views.PasswordResetView):
    """Django's reset form (same reply whether or not an account uses the address), limited per
    normalised address and per client IP: every accepted request sends an e-mail, so unlimited requests
    would let anyone flood a mailbox or our mail server. The limit is checked before the form, so a
    limited reply is the same for existing and unknown addresses too."""

    template_name = "accounts/password_reset_form.html"
    email_template_name = "accounts/password_reset_email.txt"
    subject_template_name = "accounts/password_reset_subject.txt"
    success_url = reverse_lazy("accounts:password_reset_done")

    def _keys(self) -> list[str]:
        return ratelimit.password_reset_keys(self.request.POST.get("email", ""), client_ip(self.request))

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if ratelimit.is_limited(self._keys(), ratelimit.PASSWORD_RESET):
            context = self.get_context_data(form=self.get_form_class()(initial={"email": request.POST.get("email")}),
                                            error=TOO_MANY_RESETS)
            return self.render_to_response(context, status=429)
        return super().post(request, *args, **kwargs)

    def form_valid(self, form: Any) -> HttpResponse:
        ratelimit.record_hit(self._keys(), ratelimit.PASSWORD_RESET)
        return super().form_valid(form)


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    template_name = "accounts/password_reset_done.html"


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "accounts/password_reset_confirm.html"
    success_url = reverse_lazy("accounts:password_reset_complete")

    def form_valid(self, form: Any) -> HttpResponse:
        """Set the password, then end the user's other sessions (audited) in the same transaction."""
        with transaction.atomic():
            response = super().form_valid(form)
            services.end_sessions_after_password_reset(user=form.user,
                                                       keep_session_key=self.request.session.session_key)
        return response


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "accounts/password_reset_complete.html"
