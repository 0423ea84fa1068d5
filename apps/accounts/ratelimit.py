"""Failure counters for sign-in (password and second factor), kept in Redis through Django's cache.

Fixed windows: the first failure starts a counter that expires `FIBERSTACK_LOGIN_RATE_WINDOW` seconds
later. Counting failures (not attempts) means a user who types their password right is never slowed
down. If Redis is unreachable the cache answers None (IGNORE_EXCEPTIONS) and the limit fails open,
with a warning in the log: refusing every sign-in while Redis is down would be worse (DESIGN "Redis")."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable

from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger(__name__)


def _digest(value: str) -> str:
    # Usernames may hold anything; a digest keeps keys short and free of spaces and control characters.
    return hashlib.sha256(value.encode()).hexdigest()[:32]


def login_keys(username: str, ip: str | None) -> list[str]:
    """Counters for one password attempt: per username (case-folded, so `Alice` and `alice` share one)
    and per client IP."""
    keys = [f"accounts:fail:user:{_digest(username.strip().casefold())}"]
    if ip:
        keys.append(f"accounts:fail:ip:{_digest(ip)}")
    return keys


def otp_keys(user_id: int) -> list[str]:
    """The counter for second-factor codes (login step, enrolment, disabling) of one user."""
    return [f"accounts:otp-fail:user:{user_id}"]


def is_limited(keys: Iterable[str]) -> bool:
    """True when any counter has reached the limit. Checked before the password, so a locked-out
    attacker learns nothing from further guesses."""
    limit = settings.FIBERSTACK_LOGIN_RATE_LIMIT
    counts = cache.get_many(list(keys))  # {} when Redis is down: fail open
    return any(int(count) >= limit for count in counts.values())


def record_failure(keys: Iterable[str]) -> None:
    """Count one failure on every key. `add` creates the counter with the window as its TTL and `incr`
    (atomic INCRBY in a Lua script) keeps that TTL, so concurrent failures are all counted."""
    window = settings.FIBERSTACK_LOGIN_RATE_WINDOW
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
            logger.warning("login rate limit unavailable (cache/Redis unreachable); failing open for %s", key)


def reset(keys: Iterable[str]) -> None:
    """Forget the counters, e.g. the username's after a correct password."""
    cache.delete_many(list(keys))
