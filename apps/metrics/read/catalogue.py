"""The per-process series catalogue: how the read API renders a series, as cached JSON text."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any

from django.db import connection


class SeriesCatalogue:
    """Per-process cache of how the read API renders a series: ``{"id":…,"name":…,"labels":…,"host":…``
    as JSON text, by series id, per organization.

    Matching stays in PostgreSQL (one indexed statement returning ids, so matcher semantics are
    PostgreSQL's everywhere); only the rows' text is cached. A series' organization, name and labels
    never change and its id is never reused within one database (the ingest caches rely on the same),
    so an id missing from the cache is simply a new series: its rows are fetched, nothing is invalidated.
    What can change -- the host's name, the unit -- is refreshed after ``ttl`` seconds. Keys carry the
    database identity and the organization's public_id (``apps.hosts.cache_scope.org_scope``), so a
    re-created database or organization never reads another's rows."""

    def __init__(self, ttl: float = 60.0, max_entries: int = 200_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._orgs: dict[str, tuple[float, dict[int, CatalogueEntry]]] = {}
        self._size = 0
        self._lock = threading.Lock()

    def entries(self, organization: Any, series_ids: list[int]) -> list[CatalogueEntry]:
        """The entries of ``series_ids`` (all of the organization's), in the order given."""
        from apps.hosts.cache_scope import org_scope

        scope = org_scope(organization)
        now = time.monotonic()
        found = self._orgs.get(scope)
        if found is None or found[0] <= now:
            found = (now + self.ttl, {})
        cached = found[1]
        missing = [sid for sid in series_ids if sid not in cached]
        if missing:
            fetched = _catalogue_rows(organization.pk, missing)
            with self._lock:
                if self._size + len(fetched) > self.max_entries:
                    self._orgs.clear()
                    self._size = 0
                cached = {**cached, **fetched}
                self._size += len(fetched)
                self._orgs[scope] = (found[0], cached)
        elif scope not in self._orgs:
            self._orgs[scope] = found
        return [cached[sid] for sid in series_ids if sid in cached]

    def clear(self) -> None:
        with self._lock:
            self._orgs.clear()
            self._size = 0


@dataclass(frozen=True, slots=True)
class CatalogueEntry:
    """One series as the read API shows it; ``head`` is ``{"id":…,"name":…,"labels":…,"host":…`` (open)."""

    id: int
    name: str
    host: str | None
    unit: str
    head: str


def _catalogue_rows(org_id: int, series_ids: list[int]) -> dict[int, CatalogueEntry]:
    sql = """SELECT s.id, s.public_id::text, s.name, s.labels::text, h.name, s.unit
        FROM metrics_series AS s LEFT JOIN hosts_host AS h ON h.id = s.host_id
        WHERE s.organization_id = %s AND s.id = ANY(%s)"""
    with connection.cursor() as cursor:
        cursor.execute(sql, [org_id, series_ids])
        rows = cursor.fetchall()
    dumps = json.dumps
    return {
        sid: CatalogueEntry(sid, name, host, unit, f'{{"id":"{public_id}","name":{dumps(name, ensure_ascii=False)},'
                                                   f'"labels":{labels},"host":{dumps(host, ensure_ascii=False)}')
        for sid, public_id, name, labels, host, unit in rows
    }


CATALOGUE = SeriesCatalogue()
