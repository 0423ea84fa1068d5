"""Websocket of the live tail: ``ws/<org_slug>/logs/?q=&host=&level=&service=&program=``."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from apps.accounts.live import OrganizationGroupConsumer
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


class LogTailConsumer(OrganizationGroupConsumer):
    """Relays the organization's new entries, filtered by the page's query string, to a member's browser
    (admission: the base class)."""

    filter: TailFilter

    def group_for(self, org_id: int) -> str:
        return logs_group(org_id)

    def joined(self) -> None:
        self.filter = TailFilter(self.scope.get("query_string", b"").decode("utf-8", "replace"))

    async def logs_entries(self, event: dict[str, Any]) -> None:
        entries = [entry for entry in event["entries"] if self.filter.matches(entry)]
        if entries:
            await self.send_json({"type": "logs.entries", "entries": entries})
