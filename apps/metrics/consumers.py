"""Websockets of live charts: a host page's (``ws/<org_slug>/hosts/<host public id>/points/``) and a saved
dashboard's (``ws/<org_slug>/dashboards/live/``)."""

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
from apps.metrics import live, live_dashboards

logger = logging.getLogger(__name__)


@database_sync_to_async
def _host_id(org_id: int, public_id: UUID) -> int | None:
    return Host.objects.for_org(org_id).filter(public_id=public_id).values_list("pk", flat=True).first()


class WatchingConsumer(OrganizationGroupConsumer):
    """An admitted socket that keeps something of its organization marked as watched while it is open
    (renewed every live.WATCH_RENEW_SECONDS): that mark is what makes ingest send it anything at all."""

    org_id: int | None = None
    _renewal: asyncio.Task[None] | None = None

    def watch(self) -> None:
        raise NotImplementedError

    async def connect(self) -> None:
        await super().connect()
        if self.group_name is not None:
            await self._watch()
            self._renewal = asyncio.ensure_future(self._renew())

    async def _watch(self) -> None:
        try:
            await sync_to_async(self.watch)()
        except redis.RedisError as exc:  # no live updates until Redis is back; the page still works
            logger.warning("could not mark a live page of organization %s as watched: %s", self.org_id, exc)

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


class HostPointsConsumer(WatchingConsumer):
    """Relays new points of one host's series (``apps.metrics.live``, at most one frame per interval) to a
    member's host page. Admission is the base class's plus "the host belongs to the organization in the
    URL": another organization's host is refused like a non-member. While open, the socket keeps the host
    marked as watched, which is what makes ingest send its points at all."""

    host_id: int | None = None

    async def admits(self, org_id: int) -> bool:
        self.org_id = org_id
        self.host_id = await _host_id(org_id, self.scope["url_route"]["kwargs"]["host_id"])
        return self.host_id is not None

    def group_for(self, org_id: int) -> str:
        assert self.host_id is not None
        return live.host_points_group(org_id, self.host_id)

    def watch(self) -> None:
        assert self.org_id is not None and self.host_id is not None
        live.watch_host(self.org_id, self.host_id)

    async def metrics_points(self, event: dict[str, Any]) -> None:
        await self.send_json(event)


class DashboardNamesConsumer(WatchingConsumer):
    """Relays "new data for these metric names" notices (``apps.metrics.live_dashboards``, at most one per
    organization per interval) to a member's saved dashboard page, which re-fetches the newest part of the
    widgets that show them. Admission is the base class's; while open, the socket keeps the organization's
    dashboards marked as watched."""

    async def admits(self, org_id: int) -> bool:
        self.org_id = org_id
        return True

    def group_for(self, org_id: int) -> str:
        return live_dashboards.dashboards_group(org_id)

    def watch(self) -> None:
        assert self.org_id is not None
        live_dashboards.watch_dashboards(self.org_id)

    async def metrics_names(self, event: dict[str, Any]) -> None:
        await self.send_json(event)
