"""Read-side helpers for two-factor sign-in: who has it, who must have it, and how a code is shown.

Writes (enrolment, verification, backup codes, disabling) live in services.py."""

from __future__ import annotations

import re
from base64 import b32encode
from typing import Any

import qrcode
import qrcode.image.svg
from django.conf import settings
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from apps.core.roles import Role
from apps.organizations.models import Membership

BACKUP_CODE_COUNT = 10
_TOTP_CODE = re.compile(r"^\d{6,8}$")


def has_two_factor(user: Any) -> bool:
    """True when the user has a confirmed authenticator app. Backup codes alone do not count: they only
    exist alongside a TOTP device and are removed with it."""
    if not getattr(user, "is_authenticated", False):
        return False
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def is_privileged(user: Any) -> bool:
    """Staff, superusers and owners/admins of any organization: the accounts whose takeover hurts most."""
    if user.is_staff or user.is_superuser:
        return True
    return Membership.objects.filter(user=user, role__in=[Role.OWNER, Role.ADMIN]).exists()


def two_factor_required(user: Any) -> bool:
    """Whether policy forces this user to enrol (FIBERSTACK_REQUIRE_2FA_FOR_ADMINS, on in prod)."""
    return bool(settings.FIBERSTACK_REQUIRE_2FA_FOR_ADMINS) and is_privileged(user)


def normalize_code(raw: str) -> str:
    """Codes are typed by hand: drop spaces and dashes, and fold case (backup codes are lower-case base32)."""
    return re.sub(r"[\s-]+", "", raw or "").lower()


def is_totp_code(code: str) -> bool:
    """Authenticator codes are digits; backup codes are 8 base32 letters. Routing by shape means a backup
    code never counts as a failed TOTP attempt (which would throttle the device)."""
    return bool(_TOTP_CODE.match(code))


def totp_secret(device: TOTPDevice) -> str:
    """The key as base32 in groups of four, for typing into an app that cannot scan."""
    secret = b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def qr_svg(data: str) -> str:
    """An inline SVG QR code (no image request, no JS library, nothing leaves the server)."""
    image = qrcode.make(data, image_factory=qrcode.image.svg.SvgPathImage, box_size=10, border=2)
    return image.to_string(encoding="unicode")


def backup_codes_remaining(user: Any) -> int:
    device = StaticDevice.objects.filter(user=user, confirmed=True).first()
    return device.token_set.count() if device else 0


def session_passes_two_factor(user: Any, session: Any) -> bool:
    """For websockets, which OTPMiddleware never sees: whether this session may act as `user` — it was
    verified with a code (django_otp keeps the device id in the session), or the user neither has a
    device nor is forced to enrol."""
    from django_otp import DEVICE_ID_SESSION_KEY

    if session is not None and session.get(DEVICE_ID_SESSION_KEY):
        return True
    return not has_two_factor(user) and not two_factor_required(user)
