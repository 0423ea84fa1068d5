"""The after-commit seam of alert transitions: escalation (a higher floor) learns that an alert opened,
was acknowledged or resolved through the callables ``FIBERSTACK_ALERT_CONSUMERS`` names, each called with
one immutable :class:`AlertTransition` once the transition's transaction has committed. Alerts never
imports its consumers; the mechanism (order, logged failures, system check) is ``apps.core.hooks``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.core import checks

from apps.core.hooks import AfterCommitHook

Consumer = Callable[["AlertTransition"], None]

ALERT_HOOK = AfterCommitHook(setting="FIBERSTACK_ALERT_CONSUMERS", what="alert consumer", check_id="alerts.E001")


@dataclass(frozen=True, slots=True)
class AlertTransition:
    """One committed state change of one alert. Ids, not objects: a consumer re-reads what it needs (the
    alert may have moved on by the time it runs). ``actor_repr`` is "system" for evaluations."""

    organization_id: int
    alert_id: int
    group_id: int | None
    rule_id: int
    from_state: str
    to_state: str
    at: dt.datetime
    actor_repr: str


def consumers() -> tuple[Consumer, ...]:
    """The consumers ``FIBERSTACK_ALERT_CONSUMERS`` names."""
    return ALERT_HOOK.consumers()


def dispatch(transition: AlertTransition) -> None:
    """Call every consumer with ``transition``; one that raises is logged and the others still run."""
    ALERT_HOOK.dispatch(transition)


def dispatch_batch_on_commit(transitions: Sequence[AlertTransition]) -> None:
    """Hand many transitions (one evaluation chunk's) to the consumers after commit, in order; a consumer
    with a ``batch`` attribute gets them in one call."""
    ALERT_HOOK.dispatch_batch_on_commit(transitions)


def dispatch_on_commit(transition: AlertTransition) -> None:
    """Hand ``transition`` to the consumers after the current transaction commits (never if it rolls back)."""
    ALERT_HOOK.dispatch_on_commit(transition)


def check_consumers(app_configs: object = None, **kwargs: object) -> list[checks.CheckMessage]:
    """System check: every ``FIBERSTACK_ALERT_CONSUMERS`` entry imports and is callable."""
    return ALERT_HOOK.check()
