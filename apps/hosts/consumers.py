"""Websocket for the live host list: `ws/<org_slug>/hosts/`."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from apps.accounts.twofactor import session_passes_two_factor
from apps.hosts.live import hosts_group
from apps.organizations.models import Membership

# Application close code for "not allowed": the browser stops reconnecting instead of retrying forever.
CLOSE_FORBIDDEN = 4403


@database_sync_to_async
def _membership_org_id(user: Any, slug: str, session: Any) -> int | None:
    """The organization id when `user` is a member and this session passed two-factor where required."""
    if not session_passes_two_factor(user, session):
        return None
    return (Membership.objects.filter(user=user, organization__slug=slug, organization__is_active=True)
            .values_list("organization_id", flat=True).first())


class HostsConsumer(AsyncJsonWebsocketConsumer):
    """Relays `hosts.update` events of one organization to a member's browser. Anonymous users,
    non-members and sessions that skipped a required second factor are refused the same way, so the
    socket does not reveal which organizations exist."""

    group_name: str | None = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        slug = self.scope["url_route"]["kwargs"]["org_slug"]
        authenticated = user is not None and user.is_authenticated
        org_id = await _membership_org_id(user, slug, self.scope.get("session")) if authenticated else None
        if org_id is None:
            # Accept, then close with 4403: a refused handshake reaches the browser only as 1006, which
            # it cannot tell from a network error and would retry forever.
            await self.accept()
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.group_name = hosts_group(org_id)
        await self.channel_layer.group_add(self.group_name, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if self.group_name is not None:
            await self.channel_layer.group_discard(self.group_name, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        """The socket is one-way; anything the browser sends is ignored."""

    async def hosts_update(self, event: dict[str, Any]) -> None:
        await self.send_json(event)
