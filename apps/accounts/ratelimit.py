"""Counters for sign-in (password and second-factor failures) and password-reset requests, kept in
Redis through Django's cache.

Fixed windows: the first hit starts a counter that expires after the rule's window. Sign-in counts
failures (not attempts), so a user who types their password right is never slowed down; password
reset counts every request, because each one sends an e-mail.

Usernames and addresses are keyed in one normal form (:func:`normalize_identity`): NFKC, as Django's
AuthenticationForm and ``AbstractBaseUser.normalize_username`` apply it, then case-folded. Visually equal
spellings ("bob" in fullwidth letters U+FF42 U+FF4F U+FF42, "fiona" with the U+FB01 ligature, "BOB")
therefore share one counter and cannot be used to multiply an attacker's guesses. If Redis is
unreachable the cache answers None (IGNORE_EXCEPTIONS) and the limit fails open,
with a warning in the log: refusing every sign-in while Redis is down would be worse (DESIGN "Redis")."""

from __future__ import annotations

import hashlib
import logging
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Rule:
    """A limit and its window, read from settings at use (so tests and deployments can change them)."""

    limit_setting: str
    window_setting: str

    @property
    def limit(self) -> int:
        return int(getattr(settings, self.limit_setting))

    @property
    def window(self) -> int:
        return int(getattr(settings, self.window_setting))


LOGIN = Rule("FIBERSTACK_LOGIN_RATE_LIMIT", "FIBERSTACK_LOGIN_RATE_WINDOW")
PASSWORD_RESET = Rule("FIBERSTACK_PASSWORD_RESET_RATE_LIMIT", "FIBERSTACK_PASSWORD_RESET_RATE_WINDOW")


def normalize_identity(value: str) -> str:
    """The one spelling of a username or e-mail address that counters are keyed by. NFKC runs again
    after case folding because folding can produce sequences NFKC would compose differently."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", value).strip().casefold())


def _digest(value: str) -> str:
    # Usernames may hold anything; a digest keeps keys short and free of spaces and control characters.
    return hashlib.sha256(value.encode()).hexdigest()[:32]


def login_keys(username: str, ip: str | None) -> list[str]:
    """Counters for one password attempt: per normalised username and per client IP."""
    keys = [f"accounts:fail:user:{_digest(normalize_identity(username))}"]
    if ip:
        keys.append(f"accounts:fail:ip:{_digest(ip)}")
    return keys


def password_reset_keys(email: str, ip: str | None) -> list[str]:
    """Counters for one password-reset request: per normalised address and per client IP. They do not
    depend on whether an account uses the address, so the limit reveals nothing about accounts."""
    keys = [f"accounts:reset:addr:{_digest(normalize_identity(email))}"]
    if ip:
        keys.append(f"accounts:reset:ip:{_digest(ip)}")
    return keys


def otp_keys(user_id: int) -> list[str]:
    """The counter for second-factor codes (login step, enrolment, disabling) of one user."""
    return [f"accounts:otp-fail:user:{user_id}"]


def is_limited(keys: Iterable[str], rule: Rule = LOGIN) -> bool:
    """True when any counter has reached the limit. Checked before the password, so a locked-out
    attacker learns nothing from further guesses."""
    limit = rule.limit
    counts = cache.get_many(list(keys))  # {} when Redis is down: fail open
    return any(int(count) >= limit for count in counts.values())


def record_hit(keys: Iterable[str], rule: Rule = LOGIN) -> None:
    """Count one failure (or, for password reset, one request) on every key. `add` creates the counter
    with the window as its TTL and `incr` (atomic INCRBY in a Lua script) keeps that TTL, so concurrent
    hits are all counted."""
    window = rule.window
    for key in keys:
        cache.add(key, 0, timeout=window)
        try:
            count = cache.incr(key)
        except ValueError:  # the counter expired between add and incr: this failure opens a new window
            cache.add(key, 0, timeout=window)
            try:
                count = cache.incr(key)
            except ValueError:
                count = None
        if count is None:
            logger.warning("sign-in rate limit unavailable (cache/Redis unreachable); failing open for %s", key)


def reset(keys: Iterable[str]) -> None:
    """Forget the counters, e.g. the username's after a correct password."""
    cache.delete_many(list(keys))
