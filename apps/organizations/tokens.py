"""Agent token format and hashing.

Format: ``fst_<prefix>_<secret>``. The prefix (12 hex chars) is stored in clear to find the row
without scanning; the whole token is checked with HMAC-SHA256 keyed by settings.TOKEN_PEPPER and a
constant-time compare (Healthchecks `Project._make_api_key`). A leaked database alone cannot be used
to test guesses offline without the pepper."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from django.conf import settings

TOKEN_PREFIX = "fst_"
PREFIX_LENGTH = 12


def generate_token() -> tuple[str, str]:
    """Return (token, prefix) for a new token."""
    prefix = secrets.token_hex(PREFIX_LENGTH // 2)
    return f"{TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(32)}", prefix


def hash_token(token: str) -> str:
    return hmac.new(settings.TOKEN_PEPPER.encode(), token.encode(), hashlib.sha256).hexdigest()


def split_prefix(token: str) -> str | None:
    """The lookup prefix of a well-formed token, or None."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    prefix, sep, secret = token[len(TOKEN_PREFIX):].partition("_")
    if not sep or len(prefix) != PREFIX_LENGTH or not secret:
        return None
    return prefix


def token_matches(token: str, token_hash: str) -> bool:
    return hmac.compare_digest(hash_token(token), token_hash)
