"""Websocket of a host page's charts: ``ws/<org_slug>/hosts/<host public id>/points/``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any
from uuid import UUID

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async

from apps.accounts.live import OrganizationGroupConsumer
from apps.core import redis
from apps.hosts.models import Host
from apps.metrics import live

logger = logging.getLogger(__name__)


@database_sync_to_async
def _host_id(org_id: int, public_id: UUID) -> int | None:
    return Host.objects.for_org(org_id).filter(public_id=public_id).values_list("pk", flat=True).first()


class HostPointsConsumer(OrganizationGroupConsumer):
    """Relays new points of one host's series (``apps.metrics.live``, at most one frame per interval) to a
    member's host page. Admission is the base class's plus "the host belongs to the organization in the
    URL": another organization's host is refused like a non-member. While open, the socket keeps the host
    marked as watched, which is what makes ingest send its points at all."""

    org_id: int | None = None
    host_id: int | None = None
    _renewal: asyncio.Task[None] | None = None

    async def admits(self, org_id: int) -> bool:
        self.org_id = org_id
        self.host_id = await _host_id(org_id, self.scope["url_route"]["kwargs"]["host_id"])
        return self.host_id is not None

    def group_for(self, org_id: int) -> str:
        assert self.host_id is not None
        return live.host_points_group(org_id, self.host_id)

    async def connect(self) -> None:
        await super().connect()
        if self.group_name is not None:
            await self._watch()
            self._renewal = asyncio.ensure_future(self._renew())

    async def _watch(self) -> None:
        assert self.org_id is not None and self.host_id is not None
        try:
            await sync_to_async(live.watch_host)(self.org_id, self.host_id)
        except redis.RedisError as exc:  # no live points until Redis is back; the page still works
            logger.warning("could not mark host %s as watched: %s", self.host_id, exc)

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(live.WATCH_RENEW_SECONDS)
            await self._watch()

    async def disconnect(self, code: int) -> None:
        if self._renewal is not None:
            self._renewal.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewal
        await super().disconnect(code)

    async def metrics_points(self, event: dict[str, Any]) -> None:
        await self.send_json(event)
