"""Account security writes: two-factor enrolment and verification, backup codes, session revocation.

Every change that matters to an attacker or an auditor is recorded with `record_event` in the same
transaction. Device rows are locked while a code is checked, so one code cannot pass twice in
concurrent requests (django-otp's replay guard `last_t` and the deletion of a used backup code are
plain read-modify-writes)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.sessions.models import Session
from django.db import IntegrityError, transaction
from django.utils import timezone
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from apps.accounts.live import close_session_sockets_on_commit
from apps.accounts.models import UserSession
from apps.accounts.twofactor import BACKUP_CODE_COUNT, is_totp_code, normalize_code
from apps.audit.services import record_event

TOTP_DEVICE_NAME = "Authenticator app"
BACKUP_DEVICE_NAME = "Backup codes"


@dataclass(frozen=True, slots=True)
class CodeCheck:
    """The outcome of checking a second-factor code: the device that accepted it, or why none did."""

    device: Device | None
    throttled: bool = False

    @property
    def ok(self) -> bool:
        return self.device is not None


@transaction.atomic
def start_totp_enrolment(*, user: Any) -> TOTPDevice:
    """The user's pending (unconfirmed) authenticator, created on first visit. Reusing it keeps the QR
    code stable across reloads; it grants nothing until a code confirms it."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-pk").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=TOTP_DEVICE_NAME, confirmed=False)
    return device


def _replace_backup_codes(user: Any) -> list[str]:
    device = StaticDevice.objects.select_for_update().filter(user=user).order_by("pk").first()
    if device is None:
        device = StaticDevice.objects.create(user=user, name=BACKUP_DEVICE_NAME, confirmed=True)
    StaticDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
    device.token_set.all().delete()
    codes: set[str] = set()
    while len(codes) < BACKUP_CODE_COUNT:
        codes.add(StaticToken.random_token())
    StaticToken.objects.bulk_create([StaticToken(device=device, token=code) for code in codes])
    device.throttle_reset(commit=False)
    device.confirmed = True
    device.save()
    return sorted(codes)


@transaction.atomic
def confirm_totp_device(*, user: Any, device_id: int, code: str) -> tuple[TOTPDevice, list[str]] | None:
    """Confirm the pending authenticator with a code it produced, turning two-factor on: any older
    authenticator is replaced and a fresh set of backup codes is generated (returned to show once)."""
    device = TOTPDevice.objects.select_for_update().filter(user=user, pk=device_id, confirmed=False).first()
    code = normalize_code(code)
    if device is None or not is_totp_code(code) or not device.verify_token(code):
        return None
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
    codes = _replace_backup_codes(user)
    record_event(action="user.2fa_enabled", actor=user, target=user, changes={"device": device.name})
    record_event(action="user.backup_codes_generated", actor=user, target=user, changes={"count": len(codes)})
    return device, codes


@transaction.atomic
def generate_backup_codes(*, user: Any) -> list[str]:
    """Replace the user's backup codes with ten new single-use ones; the old ones stop working."""
    codes = _replace_backup_codes(user)
    record_event(action="user.backup_codes_generated", actor=user, target=user, changes={"count": len(codes)})
    return codes


@transaction.atomic
def verify_second_factor(*, user: Any, code: str, purpose: str = "login") -> CodeCheck:
    """Check an authenticator code or a backup code (which is used up). A failure is audited as
    `user.2fa_failed`; django-otp's per-device throttling may refuse to check at all."""
    code = normalize_code(code)
    model = TOTPDevice if is_totp_code(code) else StaticDevice
    devices = list(model.objects.select_for_update().filter(user=user, confirmed=True))
    throttled = False
    for device in devices:
        allowed, _ = device.verify_is_allowed()
        if not allowed:
            throttled = True
            continue
        if device.verify_token(code):
            return CodeCheck(device=device)
    record_event(
        action="user.2fa_failed", actor=user, target=user,
        changes={"purpose": purpose, "method": "totp" if model is TOTPDevice else "backup_code",
                 "throttled": throttled},
    )
    return CodeCheck(device=None, throttled=throttled)


@transaction.atomic
def disable_two_factor(*, user: Any, code: str) -> CodeCheck:
    """Turn two-factor off, which needs a current code (authenticator or backup): a stolen, unlocked
    session alone must not be enough to remove the second factor."""
    check = verify_second_factor(user=user, code=code, purpose="disable")
    if not check.ok:
        return check
    TOTPDevice.objects.filter(user=user).delete()
    StaticDevice.objects.filter(user=user).delete()
    record_event(action="user.2fa_disabled", actor=user, target=user, changes={})
    return check


def record_session_activity(*, user: Any, session_key: str, ip: str | None, user_agent: str) -> None:
    """Upsert the UserSession row of a signed-in session (one INSERT … ON CONFLICT). Bookkeeping only,
    so not audited."""
    now = timezone.now()
    try:
        with transaction.atomic():
            UserSession.objects.bulk_create(
                [UserSession(session_id=session_key, user=user, ip=ip, user_agent=user_agent[:400],
                             last_seen_at=now)],
                update_conflicts=True,
                unique_fields=["session"],
                update_fields=["user", "ip", "user_agent", "last_seen_at"],
            )
    except IntegrityError:
        pass  # the session row was deleted (logout, revocation) while this request ran


@transaction.atomic
def revoke_session(*, user: Any, user_session: UserSession) -> None:
    """End one of the user's sessions elsewhere: deleting the Django session row signs that browser out
    on its next request (and cascades to the UserSession row); its live pages close after commit."""
    record_event(
        action="user.session_revoked", actor=user, target=user,
        changes={"session": str(user_session.public_id), "ip": user_session.ip,
                 "user_agent": user_session.user_agent},
    )
    Session.objects.filter(session_key=user_session.session_id).delete()
    close_session_sockets_on_commit([user_session.session_id])


def _delete_sessions(user: Any, keep_session_key: str | None) -> int:
    """Delete the user's other sessions and close their live pages after commit."""
    keys = list(UserSession.objects.filter(user=user).exclude(session_id=keep_session_key or "")
                .values_list("session_id", flat=True))
    _, per_model = Session.objects.filter(session_key__in=keys).delete()
    close_session_sockets_on_commit(keys)
    return per_model.get(Session._meta.label, 0)


@transaction.atomic
def revoke_other_sessions(*, user: Any, keep_session_key: str | None) -> int:
    """End every session of the user except the current one; returns how many ended."""
    count = _delete_sessions(user, keep_session_key)
    record_event(action="user.sessions_revoked", actor=user, target=user, changes={"count": count})
    return count


@transaction.atomic
def end_sessions_after_password_reset(*, user: Any, keep_session_key: str | None) -> int:
    """After a password reset, sign the user out everywhere else: whoever knew the old password may
    hold a session. (Django already invalidates them through the session auth hash; deleting the rows
    also clears them from the security page.)"""
    count = _delete_sessions(user, keep_session_key)
    record_event(action="user.password_reset", actor=user, target=user, changes={"sessions_ended": count})
    return count
