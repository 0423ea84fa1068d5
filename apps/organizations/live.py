"""Closing live pages when access ends. A websocket is admitted once (``apps.accounts.live``) and would
otherwise outlive what admitted it, so every admitted socket also joins control groups -- one per
(organization, member) here, one per session in accounts -- and the services that end access send those
groups a ``live.close`` after their transaction commits (a rolled-back removal closes nothing)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)

MEMBERSHIP_GROUP = "org.{org_id}.member.{user_id}"
# The channel-layer event type; consumers handle it as ``live_close``.
CLOSE_EVENT = "live.close"


def membership_group(organization_id: int, user_id: int) -> str:
    """The control group of one user's live sockets in one organization."""
    return MEMBERSHIP_GROUP.format(org_id=organization_id, user_id=user_id)


def close_live_sockets(groups: Iterable[str]) -> None:
    """Tell every socket in ``groups`` to close. Best effort and never raises: with Redis down no live
    socket can be open on another process anyway, and the next connect re-checks access."""
    names = list(groups)
    if not names:
        return
    try:
        layer = get_channel_layer()
        if layer is None:
            return
        for name in names:
            async_to_sync(layer.group_send)(name, {"type": CLOSE_EVENT})
    except Exception:  # a transport failure must not fail the request that ended the access
        logger.warning("Could not close live sockets of %s", names, exc_info=True)


def close_live_sockets_on_commit(groups: Iterable[str]) -> None:
    """``close_live_sockets`` once the current transaction commits (at once outside one)."""
    transaction.on_commit(functools.partial(close_live_sockets, list(groups)))
