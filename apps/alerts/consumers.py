"""Websocket for the live alert list: ``ws/<org_slug>/alerts/``."""

from __future__ import annotations

from typing import Any

from apps.accounts.live import OrganizationGroupConsumer
from apps.alerts.live import alerts_group


class AlertsConsumer(OrganizationGroupConsumer):
    """Relays ``alerts.update`` events of one organization to a member's browser (admission: the base class)."""

    def group_for(self, org_id: int) -> str:
        return alerts_group(org_id)

    async def alerts_update(self, event: dict[str, Any]) -> None:
        await self.send_json(event)
