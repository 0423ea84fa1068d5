"""The one way a live page's websocket admits a browser: a signed-in member of the organization in the URL
whose session passed two-factor where it is required, joined to one per-organization channel-layer group.
Apps with live pages subclass :class:`OrganizationGroupConsumer` and name their group.

Admission is not forever: every admitted socket also joins two control groups -- its session's
(``session_group``) and its membership's (``apps.organizations.live.membership_group``) -- and closes when
either receives ``live.close``: session revocation, sign-out and password reset send it to the session,
removing the member sends it to the membership (both after commit)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from apps.accounts.twofactor import session_passes_two_factor
from apps.organizations.live import close_live_sockets_on_commit, membership_group
from apps.organizations.models import Membership

# Application close code for "not allowed": the browser stops reconnecting instead of retrying forever.
CLOSE_FORBIDDEN = 4403
#: RFC 6455 "unsupported data": the answer to any frame a browser sends to these one-way sockets.
CLOSE_UNSUPPORTED_DATA = 1003


def session_group(session_key: str) -> str:
    """The control group of the live sockets opened by one session. The key is a credential, so the group
    is named by its digest (group names travel through Redis and logs)."""
    return "session." + hashlib.blake2b(session_key.encode(), digest_size=16).hexdigest()


def close_session_sockets_on_commit(session_keys: Iterable[str]) -> None:
    """Close the live sockets of these sessions once the current transaction commits."""
    close_live_sockets_on_commit(session_group(key) for key in session_keys if key)


@database_sync_to_async
def membership_org_id(user: Any, slug: str, session: Any) -> int | None:
    """The organization id when `user` is a member and this session passed two-factor where required."""
    if not session_passes_two_factor(user, session):
        return None
    return (Membership.objects.filter(user=user, organization__slug=slug, organization__is_active=True)
            .values_list("organization_id", flat=True).first())


class OrganizationGroupConsumer(AsyncJsonWebsocketConsumer):
    """Admits members of the URL's organization and joins them to ``group_for(org_id)``. Anonymous users,
    non-members and sessions that skipped a required second factor are refused the same way, so the socket
    does not reveal which organizations exist. The socket is one-way: a frame from the browser closes it (1003)."""

    group_name: str | None = None
    control_groups: tuple[str, ...] = ()
    closing = False

    def group_for(self, org_id: int) -> str:
        raise NotImplementedError

    def joined(self) -> None:
        """Called once admitted, before the handshake completes (e.g. to read the query string)."""

    async def admits(self, org_id: int) -> bool:
        """A subclass's own check of the URL within the organization (e.g. that a host in it belongs to
        it); refused like a non-member, so the socket does not reveal which objects exist elsewhere."""
        return True

    async def connect(self) -> None:
        user = self.scope.get("user")
        slug = self.scope["url_route"]["kwargs"]["org_slug"]
        authenticated = user is not None and user.is_authenticated
        org_id = await membership_org_id(user, slug, self.scope.get("session")) if authenticated else None
        if org_id is None:
            # Accept, then close with 4403: a refused handshake reaches the browser only as 1006, which
            # it cannot tell from a network error and would retry forever.
            await self.accept()
            await self.close(code=CLOSE_FORBIDDEN)
            return
        session_key = getattr(self.scope.get("session"), "session_key", None) or ""
        self.control_groups = (membership_group(org_id, user.pk),
                               *([session_group(session_key)] if session_key else ()))
        for group in self.control_groups:
            await self.channel_layer.group_add(group, self.channel_name)
        # Access may have ended between the check and the joins, when no socket was there to be told:
        # checked again now that a "live.close" would reach this one.
        if (await membership_org_id(user, slug, self.scope.get("session")) != org_id
                or not await self.admits(org_id)):
            await self.accept()
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.joined()
        self.group_name = self.group_for(org_id)
        await self.channel_layer.group_add(self.group_name, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        for group in (*self.control_groups, *([self.group_name] if self.group_name else ())):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def live_close(self, event: dict[str, Any]) -> None:
        """Access ended (session revoked, member removed): close with 4403 so the page stops reconnecting."""
        await self.close(code=CLOSE_FORBIDDEN)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any) -> None:
        """The socket is one-way and no page sends on it: a frame is closed with 1003, before any decoding.
        (The JSON decoding this replaces raised on a binary frame, a non-JSON text or a deeply nested list,
        and a raising consumer is the websocket's 500.)"""
        if not self.closing:
            self.closing = True
            await self.close(code=CLOSE_UNSUPPORTED_DATA)
