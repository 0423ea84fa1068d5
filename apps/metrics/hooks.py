"""The after-commit seam of metrics ingest: ``ingest`` describes what one request stored in one immutable
``IngestBatch`` and hands it, once the transaction has committed, to every consumer that
``FIBERSTACK_INGEST_CONSUMERS`` names (dotted paths of ``consume(batch) -> None`` callables).

Metrics never imports its consumers: the hot tier, the hosts' "seen" bookkeeping and, later, the alert
evaluator plug in by setting. Consumers run in the order listed, in the request's thread, after the
commit (so nothing they do can see or announce a rolled-back write); one that raises is logged and
skipped, never failing the reply or the consumers after it. They are best effort by contract: anything
that must not be lost belongs inside the ingest transaction instead (the late-data invalidation log)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from django.core import checks

from apps.core.hooks import AfterCommitHook

Consumer = Callable[["IngestBatch"], None]


@dataclass(frozen=True, slots=True)
class IngestBatch:
    """What one ingest request stored, shared read-only by every consumer (mappings are read-only views).

    ``latest`` holds the newest sample of each series in the request as (epoch microseconds, value);
    ``host_of_series`` the host id of those series (None: no host); ``hosts_seen`` every host the request
    named, with or without samples (probe metadata names hosts too)."""

    organization_id: int
    received_at: dt.datetime
    latest: Mapping[int, tuple[int, float]]
    host_of_series: Mapping[int, int | None]
    hosts_seen: frozenset[int]

    @classmethod
    def build(cls, *, organization_id: int, received_at: dt.datetime, latest: dict[int, tuple[int, float]],
              host_of_series: dict[int, int | None], hosts_seen: frozenset[int]) -> IngestBatch:
        """Wrap the request's dicts read-only; ``ingest`` hands over dicts it no longer touches."""
        return cls(organization_id, received_at, MappingProxyType(latest), MappingProxyType(host_of_series),
                   hosts_seen)

    @property
    def empty(self) -> bool:
        """Nothing stored and no host named (e.g. every line rejected): no consumer is called."""
        return not (self.latest or self.hosts_seen)


#: The ingest hook (apps.core.hooks does the work; the names below are this module's public interface).
INGEST_HOOK = AfterCommitHook(setting="FIBERSTACK_INGEST_CONSUMERS", what="ingest consumer", check_id="metrics.E001")


def consumers() -> tuple[Consumer, ...]:
    """The consumers ``FIBERSTACK_INGEST_CONSUMERS`` names, imported once per distinct setting value."""
    return INGEST_HOOK.consumers()


def dispatch(batch: IngestBatch) -> None:
    """Call every consumer with ``batch``; a consumer's exception is logged and the others still run."""
    INGEST_HOOK.dispatch(batch)


def dispatch_on_commit(batch: IngestBatch) -> None:
    """Hand ``batch`` to the consumers after the current transaction commits (nothing if it rolls back)."""
    if not batch.empty:
        INGEST_HOOK.dispatch_on_commit(batch)


def check_consumers(app_configs: object = None, **kwargs: object) -> list[checks.CheckMessage]:
    """System check: every ``FIBERSTACK_INGEST_CONSUMERS`` entry imports and is callable, so a typo fails
    ``manage.py check`` and startup instead of silently skipping consumers on every ingest."""
    return INGEST_HOOK.check()
