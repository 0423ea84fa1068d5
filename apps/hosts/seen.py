"""The hosts' ingest consumer: every committed metrics push marks the hosts it named as seen and tells
live pages about them, throttled per host (``services.mark_hosts_seen``).

Listed in ``FIBERSTACK_INGEST_CONSUMERS``; metrics reaches it only through that setting. Hosts sits on a
lower floor than metrics and must not import it, so the batch is described here by the fields this
consumer reads (``apps.metrics.hooks.IngestBatch`` has them)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Set
from typing import Protocol

from apps.hosts.services import mark_hosts_seen


class SeenBatch(Protocol):
    """What this consumer needs of an ingest batch."""

    @property
    def organization_id(self) -> int: ...

    @property
    def received_at(self) -> dt.datetime: ...

    @property
    def hosts_seen(self) -> Set[int]: ...


def consume(batch: SeenBatch) -> None:
    """Ingest consumer: last_seen of the request's hosts and their live event (one Redis round trip)."""
    if batch.hosts_seen:
        mark_hosts_seen(organization_id=batch.organization_id, host_ids=batch.hosts_seen,
                        when=batch.received_at, broadcast=True)
