"""Signed, time-limited acknowledge / resolve links put into escalation notifications. The token names
the alert, the paged user and the action; it is the credential (no session), so the page behind it only
shows a confirmation on GET -- mail scanners and link previews fetch GETs -- and acts on POST."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core import signing
from django.urls import reverse

SALT = "fiberstack.escalation.alert-link"
# The *_group actions come in group escalation pages: they act on every open alert of the alert's group.
ACTIONS = ("acknowledge", "resolve", "acknowledge_group", "resolve_group")


@dataclass(frozen=True, slots=True)
class LinkClaim:
    """What a valid token says: ``user_id`` may ``action`` the alert ``alert_public_id``."""

    alert_public_id: str
    user_id: int
    action: str


def make_token(*, alert_public_id: str, user_id: int, action: str) -> str:
    if action not in ACTIONS:
        raise ValueError(f"unknown link action {action!r}")
    return signing.dumps({"a": alert_public_id, "u": user_id, "x": action}, salt=SALT, compress=True)


def make_url(*, alert: Any, user: Any, action: str) -> str:
    """The absolute link for ``user`` to ``action`` ``alert``."""
    token = make_token(alert_public_id=str(alert.public_id), user_id=user.pk, action=action)
    return settings.FIBERSTACK_BASE_URL.rstrip("/") + reverse("escalation-link", kwargs={"token": token})


def read_token(token: str) -> LinkClaim | None:
    """The claim of a genuine, unexpired token; None for anything else (forged, altered, expired)."""
    try:
        data = signing.loads(token, salt=SALT, max_age=settings.FIBERSTACK_ESCALATION_LINK_MAX_AGE_SECONDS)
    except signing.BadSignature:  # SignatureExpired is a subclass
        return None
    if not isinstance(data, dict) or data.get("x") not in ACTIONS or not isinstance(data.get("u"), int):
        return None
    return LinkClaim(alert_public_id=str(data.get("a")), user_id=data["u"], action=data["x"])
