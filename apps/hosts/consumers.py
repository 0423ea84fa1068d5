"""Websocket for the live host list: `ws/<org_slug>/hosts/`."""

from __future__ import annotations

from typing import Any

from apps.accounts.live import OrganizationGroupConsumer
from apps.hosts.live import hosts_group


class HostsConsumer(OrganizationGroupConsumer):
    """Relays `hosts.update` events of one organization to a member's browser (admission: the base class)."""

    def group_for(self, org_id: int) -> str:
        return hosts_group(org_id)

    async def hosts_update(self, event: dict[str, Any]) -> None:
        await self.send_json(event)
