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
import functools
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from django.conf import settings
from django.core import checks
from django.db import transaction
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)

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


def consumers() -> tuple[Consumer, ...]:
    """The consumers ``FIBERSTACK_INGEST_CONSUMERS`` names, imported once per distinct setting value."""
    return _resolve(tuple(getattr(settings, "FIBERSTACK_INGEST_CONSUMERS", ())))


@functools.cache
def _resolve(paths: tuple[str, ...]) -> tuple[Consumer, ...]:
    # Keyed by the setting's value, so a test's override_settings resolves its own list and a process
    # imports each list once (ingest runs thousands of times a minute).
    return tuple(import_string(path) for path in paths)


def dispatch(batch: IngestBatch) -> None:
    """Call every consumer with ``batch``; a consumer's exception is logged and the others still run."""
    for consume in consumers():
        try:
            consume(batch)
        except Exception:
            logger.exception("ingest consumer %s failed for organization %s", _name(consume),
                             batch.organization_id)


def dispatch_on_commit(batch: IngestBatch) -> None:
    """Hand ``batch`` to the consumers after the current transaction commits (nothing if it rolls back)."""
    if not batch.empty:
        transaction.on_commit(functools.partial(dispatch, batch), robust=True)


def _name(consume: Consumer) -> str:
    return f"{getattr(consume, '__module__', '?')}.{getattr(consume, '__qualname__', repr(consume))}"


def check_consumers(app_configs: object = None, **kwargs: object) -> list[checks.CheckMessage]:
    """System check: every ``FIBERSTACK_INGEST_CONSUMERS`` entry imports and is callable, so a typo fails
    ``manage.py check`` and startup instead of silently skipping consumers on every ingest."""
    errors: list[checks.CheckMessage] = []
    for path in getattr(settings, "FIBERSTACK_INGEST_CONSUMERS", ()):
        try:
            consume = import_string(path)
        except ImportError as exc:
            errors.append(checks.Error(f"FIBERSTACK_INGEST_CONSUMERS names {path!r}, which cannot be imported: "
                                       f"{exc}", id="metrics.E001"))
            continue
        if not callable(consume):
            errors.append(checks.Error(f"FIBERSTACK_INGEST_CONSUMERS names {path!r}, which is not callable",
                                       id="metrics.E001"))
    return errors
