"""After-commit hooks named in settings: the one mechanism by which a lower floor tells higher floors what
happened without importing them (metrics ingest -> hot tier, hosts seen, alert evaluation; alert
transitions -> escalation).

A hook is a setting listing dotted paths of ``consume(payload) -> None`` callables. The producer builds one
immutable payload and calls :meth:`AfterCommitHook.dispatch_on_commit`; once the transaction commits, every
consumer is called in the order listed, in the producer's thread. A consumer that raises is logged and
skipped, never failing the producer or the consumers after it: consumers are best effort by contract, and
anything that must not be lost belongs inside the producer's transaction instead."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core import checks
from django.db import transaction
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)

Consumer = Callable[[Any], None]


@functools.cache
def _resolve(paths: tuple[str, ...]) -> tuple[Consumer, ...]:
    # Keyed by the setting's value, so a test's override_settings resolves its own list and a process
    # imports each list once (ingest runs thousands of times a minute).
    return tuple(import_string(path) for path in paths)


def consumer_name(consume: Consumer) -> str:
    """``module.qualname`` of a consumer, for logs."""
    return f"{getattr(consume, '__module__', '?')}.{getattr(consume, '__qualname__', repr(consume))}"


@dataclass(frozen=True, slots=True)
class AfterCommitHook:
    """One hook: ``setting`` names the consumers, ``what`` names one in logs ("ingest consumer"), and
    ``check_id`` is the system-check id reported for a consumer that does not import."""

    setting: str
    what: str
    check_id: str

    def consumers(self) -> tuple[Consumer, ...]:
        """The consumers the setting names, imported once per distinct setting value."""
        return _resolve(tuple(getattr(settings, self.setting, ())))

    def dispatch(self, payload: Any) -> None:
        """Call every consumer with ``payload``; a consumer's exception is logged and the others still run."""
        for consume in self.consumers():
            try:
                consume(payload)
            except Exception:
                logger.exception("%s %s failed for organization %s", self.what, consumer_name(consume),
                                 getattr(payload, "organization_id", "?"))

    def dispatch_batch(self, payloads: Sequence[Any]) -> None:
        """Call every consumer with each payload, in order. A consumer with a ``batch`` attribute (a
        callable taking the whole list) gets the list in one call instead, so it can read what it needs
        for all of them at once -- an alert storm hands a thousand transitions over together."""
        for consume in self.consumers():
            batch = getattr(consume, "batch", None)
            if batch is not None:
                try:
                    batch(list(payloads))
                except Exception:
                    logger.exception("%s %s failed for a batch of %d", self.what, consumer_name(consume),
                                     len(payloads))
                continue
            for payload in payloads:
                try:
                    consume(payload)
                except Exception:
                    logger.exception("%s %s failed for organization %s", self.what, consumer_name(consume),
                                     getattr(payload, "organization_id", "?"))

    def dispatch_batch_on_commit(self, payloads: Sequence[Any]) -> None:
        """:meth:`dispatch_batch` after the current transaction commits (nothing if it rolls back)."""
        if payloads:
            transaction.on_commit(functools.partial(self.dispatch_batch, list(payloads)), robust=True)

    def dispatch_on_commit(self, payload: Any) -> None:
        """Hand ``payload`` to the consumers after the current transaction commits (nothing if it rolls back)."""
        transaction.on_commit(functools.partial(self.dispatch, payload), robust=True)

    def check(self, app_configs: object = None, **kwargs: object) -> list[checks.CheckMessage]:
        """System check: every entry imports and is callable, so a typo fails ``manage.py check`` and
        startup instead of silently skipping a consumer every time."""
        errors: list[checks.CheckMessage] = []
        for path in getattr(settings, self.setting, ()):
            try:
                consume = import_string(path)
            except ImportError as exc:
                errors.append(checks.Error(f"{self.setting} names {path!r}, which cannot be imported: {exc}",
                                           id=self.check_id))
                continue
            if not callable(consume):
                errors.append(checks.Error(f"{self.setting} names {path!r}, which is not callable",
                                           id=self.check_id))
        return errors
