"""Websocket of the live tail: ``ws/<org_slug>/logs/?q=&host=&level=&service=&program=``."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from channels.generic.websocket import AsyncJsonWebsocketConsumer

from apps.hosts.consumers import CLOSE_FORBIDDEN, _membership_org_id
from apps.logs import levels
from apps.logs.live import logs_group


class TailFilter:
    """The page's filters applied to live entries in the consumer. ``q`` matches when every word occurs
    in the message (case-insensitive): a cheap approximation of the full-text search, stated on the page."""

    def __init__(self, query_string: str) -> None:
        params = {key: values[-1] for key, values in parse_qs(query_string).items() if values}
        self.words = [w.lower() for w in params.get("q", "").split() if w not in ("or", "OR") and not w.startswith("-")]
        self.exact = {name: {v.strip() for v in params[name].split(",") if v.strip()}
                      for name in ("host", "service", "program") if params.get(name)}
        try:
            self.levels = set(levels.parse_filter(params.get("level", "")))
        except ValueError:
            self.levels = set()

    def matches(self, entry: dict[str, Any]) -> bool:
        if self.levels and entry["level"] not in self.levels:
            return False
        if any(entry.get(name) not in values for name, values in self.exact.items()):
            return False
        message = entry.get("message", "").lower()
        return all(word.strip('"') in message for word in self.words)


class LogTailConsumer(AsyncJsonWebsocketConsumer):
    """Relays the organization's new entries, filtered, to a member's browser. Anonymous users,
    non-members and sessions without a required second factor are closed with 4403 alike."""

    group_name: str | None = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        slug = self.scope["url_route"]["kwargs"]["org_slug"]
        authenticated = user is not None and user.is_authenticated
        org_id = await _membership_org_id(user, slug, self.scope.get("session")) if authenticated else None
        if org_id is None:
            await self.accept()
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.filter = TailFilter(self.scope.get("query_string", b"").decode("utf-8", "replace"))
        self.group_name = logs_group(org_id)
        await self.channel_layer.group_add(self.group_name, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if self.group_name is not None:
            await self.channel_layer.group_discard(self.group_name, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        """The socket is one-way; anything the browser sends is ignored."""

    async def logs_entries(self, event: dict[str, Any]) -> None:
        entries = [entry for entry in event["entries"] if self.filter.matches(entry)]
        if entries:
            await self.send_json({"type": "logs.entries", "entries": entries})
